import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runInCode } from '../../examples/pipeline-in-code';
import { runFromConfig } from '../../examples/pipeline-from-config';
import { duck, lit } from '../logs/duck';
import { ranOnAutomaticBackend } from './automatic-backend';

async function rows(runDir: string, table: string, order: string): Promise<Record<string, unknown>[]> {
  const src =
    table === 'examples'
      ? `read_parquet(${lit(path.join(runDir, 'examples', '*', '*.parquet'))}, hive_partitioning = false)`
      : `read_parquet(${lit(path.join(runDir, table + '.parquet'))})`;
  const r = await duck(`SELECT * EXCLUDE (run_id) FROM ${src} ORDER BY ${order}`);
  return r.map((x) => Object.fromEntries(Object.entries(x).filter(([k]) => !['time', 'ms'].includes(k))));
}

describe('examples/: the same run in code and from a config', () => {
  it('writes identical examples, steps and events tables', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-examples-'));
    const sizes = { epochs: 2, trainSize: 40, testSize: 16, steps: 2 };
    const codeDir = await runInCode({ outDir: out, runId: 'in-code', ...sizes });
    const configDir = await runFromConfig(out, [
      `epochs=${sizes.epochs}`,
      `data.trainSize=${sizes.trainSize}`,
      `data.testSize=${sizes.testSize}`,
      `attack.steps=${sizes.steps}`,
      'eval.every=1',
    ]);
    expect(configDir).not.toBe(codeDir);
    // both on the backend atflow chooses by itself (tensorflow where it is built), the same one
    for (const d of [codeDir, configDir]) {
      const b = await ranOnAutomaticBackend(d);
      expect(b.ran).toBe(b.automatic);
    }
    const ex = await rows(codeDir, 'examples', 'epoch, phase, split, example');
    // per epoch: the training set in the train and eval phases, the test split in the eval phase
    expect(ex).toHaveLength(2 * (2 * 40 + 16));
    expect(await rows(configDir, 'examples', 'epoch, phase, split, example')).toEqual(ex);
    expect(await rows(configDir, 'steps', 'epoch, step')).toEqual(await rows(codeDir, 'steps', 'epoch, step'));
    expect(await rows(configDir, 'events', 'epoch, phase, example, event')).toEqual(
      await rows(codeDir, 'events', 'epoch, phase, example, event'),
    );
  });
});
