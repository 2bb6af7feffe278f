import * as fs from 'fs';
import * as path from 'path';
import { loadRuns } from '../../src/config/spec';
import { atflow, tempRoot, tinySpec, writeJson } from '../reliability/helpers';

/**
 * Issue 22, item 5: after `npm run setup:tensorflow`, `npm start` finished in 6 s and printed the wasm
 * run's table: the finished runs were skipped without a word (the run id does not depend on the
 * backend). A skipped run now prints one line: skipped, where, and on which backend it was trained;
 * `--rerun` trains it again. `npm start` runs variants in processes (--workers 0), so both paths.
 */
describe('a finished run run again', () => {
  jest.setTimeout(300_000);
  const root = tempRoot('atflow-skip-');
  const config = writeJson(path.join(root, 'two.json'), {
    ...tinySpec('two', { logging: { examples: false }, eval: { train: false, final: { examples: 8 } } }),
    variants: { a: { trainer: { name: 'pgd-at' } }, b: { trainer: { name: 'trades' } } },
  });
  const runs = loadRuns(config);
  const out = path.join(root, 'runs');

  beforeAll(() => {
    const first = atflow(['run', config, '--out', out, '--backend', 'cpu', '--workers', '2']);
    expect(first.status).toBe(0);
  });

  it.each([
    ['in this process', ['--workers', '1']],
    ['as variant processes (npm start)', ['--workers', '2']],
  ])('%s: says it was skipped, where, and that it was trained on cpu', (_label, workers) => {
    const again = atflow(['run', config, '--out', out, '--backend', 'wasm', ...workers]);
    expect(again.status).toBe(0);
    for (const run of runs) {
      const lines = again.stderr.split('\n').filter((l) => l.includes(run.runId) && /skipped/.test(l));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(path.join(out, run.runId));
      expect(lines[0]).toMatch(/trained on cpu \(/);
      expect(lines[0]).toContain('--rerun');
    }
  });

  it('--rerun trains it again, on the backend asked for', () => {
    const again = atflow(['run', config, '--out', out, '--backend', 'wasm', '--only', 'a', '--rerun']);
    expect(again.status).toBe(0);
    const a = runs.find((r) => r.variant === 'a')!;
    expect(again.stderr).toMatch(new RegExp(`${a.runId}: completed on wasm`));
    expect(JSON.parse(fs.readFileSync(path.join(out, a.runId, 'spec.json'), 'utf8')).backend.name).toBe('wasm');
    const skipped = atflow(['run', config, '--out', out, '--only', 'a']);
    expect(skipped.stderr).toMatch(/skipped, .*\(trained on wasm \(/);
  });
});
