import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import { runConfig } from '../../src/cli/run-config';
import { oversubscription, parseVariantProcesses } from '../../src/run/data-parallel/worker-counts';
import { runLocal } from '../../src/sweep/local-executor';
import { materialiseSweep } from '../../src/sweep/expand';
import { parseSweepSpec } from '../../src/sweep/sweep-spec';
import { atflow, tempRoot, tinySpec, writeJson } from '../reliability/helpers';
import { fakeRunner } from '../sweep/helpers';

/** Issue 11: `--workers foo` was silently sequential; the two meanings of "workers" are told apart. */

const root = tempRoot('atflow-procs-');
const config = writeJson(path.join(root, 'two.json'), tinySpec('two', { epochs: 1, variants: { a: {}, b: { seed: 8 } } }));

describe('--workers (variant processes) vs ATFLOW_WORKERS (data-parallel threads)', () => {
  it.each(['foo', '2.5'])("the CLI refuses --workers '%s' with exit code 2, naming the value, and writes nothing", (bad) => {
    const out = path.join(root, `out-${bad || 'empty'}`);
    const r = atflow(['run', config, '--workers', bad, '--out', out, '--backend', 'wasm']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`atflow: --workers '${bad}': expected the number of variant processes, an integer ≥ 0 (0 = one per core)`);
    expect(r.stderr).toContain('ATFLOW_WORKERS');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('parses counts and refuses a non-integer given programmatically', async () => {
    expect(parseVariantProcesses(undefined)).toBe(1);
    expect(parseVariantProcesses('0')).toBe(0);
    expect(parseVariantProcesses(' 3 ')).toBe(3);
    for (const bad of ['-1', '', '1e3', 'two'])
      expect(() => parseVariantProcesses(bad)).toThrow(`--workers '${bad}': expected the number of variant processes`);
    await expect(runConfig(config, { outDir: path.join(root, 'nan'), processes: NaN, quiet: true, log: () => undefined })).rejects.toThrow(
      AtflowError,
    );
    await expect(runConfig(config, { outDir: path.join(root, 'nan'), processes: NaN, quiet: true, log: () => undefined })).rejects.toThrow(
      /--workers NaN: expected the number of variant processes/,
    );
    expect(fs.existsSync(path.join(root, 'nan'))).toBe(false);
  });

  it('warns when variant processes × data-parallel threads exceed the cores, naming both', () => {
    expect(oversubscription(2, { ATFLOW_WORKERS: '2' }, 2)).toBe(
      '--workers 2 variant processes × ATFLOW_WORKERS=2 data-parallel threads each = 4 threads on 2 cores; they multiply, so lower one of them (e.g. --workers 1)',
    );
    expect(oversubscription(3, { ATFLOW_WORKERS: 'auto' }, 4)).toMatch(
      /^--workers 3 variant processes × ATFLOW_WORKERS=auto data-parallel threads each = 12 threads on 4 cores/,
    );
    expect(oversubscription(2, { ATFLOW_WORKERS: '2' }, 4)).toBeNull();
    expect(oversubscription(2, {}, 1)).toBeNull();
    expect(oversubscription(1, { ATFLOW_WORKERS: '8' }, 2)).toBeNull();
  });

  it('the sweep executor warns the same way when its processes × ATFLOW_WORKERS exceed the cores', async () => {
    const spec = parseSweepSpec({ base: { delayMs: 10 }, axes: { seed: [1, 2] } }, path.join(root, 'g.json'));
    const { manifest } = materialiseSweep(spec, path.join(root, 'sweep'));
    const lines: string[] = [];
    await runLocal(manifest, {
      workers: 2,
      gpus: 'none',
      runner: fakeRunner,
      env: { ...process.env, ATFLOW_WORKERS: String(os.availableParallelism()) },
      onStatus: (l) => lines.push(l),
    });
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^warning: --workers 2 variant processes × ATFLOW_WORKERS=\d+ data-parallel threads each = \d+ threads on \d+ cores/,
      ),
    );
  });

  it('run --help tells the two apart and says they multiply', () => {
    const r = atflow(['run', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--workers <n>\s+variant processes/);
    expect(r.stdout).toMatch(/ATFLOW_WORKERS=<k>\s+data-parallel threads inside each run/);
    expect(r.stdout).toMatch(/multiply/);
  });
});
