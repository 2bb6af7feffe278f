import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runInCode } from '../../examples/pipeline-in-code';
import { runFromConfig } from '../../examples/pipeline-from-config';
import { duck, lit } from '../logs/duck';

async function rows(runDir: string, table: string, order: string): Promise<Record<string, unknown>[]> {
  const src =
    table === 'examples'
      ? `read_parquet(${lit(path.join(runDir, 'examples', '*', '*.parquet'))}, hive_partitioning = false)`
      : `read_parquet(${lit(path.join(runDir, table + '.parquet'))})`;
  return duck(`SELECT * EXCLUDE (run_id) FROM ${src} ORDER BY ${order}`);
}

describe('examples/pipeline-in-code.ts: checkpoints, resume and report from the same operators', () => {
  jest.setTimeout(300_000);

  it('stopped after epoch 1 and run again, it resumes and writes the uninterrupted config run’s logs, then its report', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-in-code-resume-'));
    const sizes = { epochs: 2, trainSize: 40, testSize: 16, steps: 2 };
    const first = await runInCode({ outDir: out, runId: 'in-code', ...sizes, stopAfter: 1 });
    expect(fs.existsSync(path.join(first, '_SUCCESS'))).toBe(false);
    expect(fs.existsSync(path.join(first, 'checkpoints', 'LATEST'))).toBe(true);
    const codeDir = await runInCode({ outDir: out, runId: 'in-code', ...sizes });
    expect(codeDir).toBe(first);
    expect(fs.existsSync(path.join(codeDir, '_SUCCESS'))).toBe(true);
    expect(fs.existsSync(path.join(codeDir, 'report.html'))).toBe(true);
    const configDir = await runFromConfig(out, [
      `epochs=${sizes.epochs}`,
      `data.trainSize=${sizes.trainSize}`,
      `data.testSize=${sizes.testSize}`,
      `attack.steps=${sizes.steps}`,
      'eval.every=1',
    ]);
    expect(await rows(codeDir, 'examples', 'epoch, phase, split, example')).toEqual(
      await rows(configDir, 'examples', 'epoch, phase, split, example'),
    );
    const steps = (d: string) => rows(d, 'steps', 'epoch, step').then((r) => r.map(({ ms: _m, time: _t, ...rest }) => rest));
    expect(await steps(codeDir)).toEqual(await steps(configDir));
    expect(await rows(codeDir, 'events', 'epoch, phase, example, event')).toEqual(
      await rows(configDir, 'events', 'epoch, phase, example, event'),
    );
  });
});
