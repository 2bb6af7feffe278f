import * as path from 'path';
import { atflowRunCommand, findAtflowBin } from '../../src/sweep/runner';

const repo = path.join(__dirname, '..', '..');

describe('atflowRunCommand', () => {
  test("starts this package's bin/atflow.js with `run <config> --out <out> --resume --quiet`", () => {
    expect(findAtflowBin()).toBe(path.join(repo, 'bin', 'atflow.js'));
    expect(atflowRunCommand()('/s/configs/0001.json', '/runs')).toEqual({
      command: process.execPath,
      args: [path.join(repo, 'bin', 'atflow.js'), 'run', '/s/configs/0001.json', '--out', '/runs', '--resume', '--quiet'],
    });
  });

  test('passes --backend on; verbose keeps the progress output', () => {
    const { args } = atflowRunCommand({ backend: 'wasm', verbose: true, binPath: '/x/atflow.js' })('c.json', 'o');
    expect(args).toEqual(['/x/atflow.js', 'run', 'c.json', '--out', 'o', '--resume', '--backend', 'wasm']);
  });
});
