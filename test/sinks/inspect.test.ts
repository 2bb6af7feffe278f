import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { firstValueFrom, from } from 'rxjs';
import { inspectFile, tableFiles } from '../../src/cli/commands/inspect';
import { arrowSink } from '../../src/sinks/arrow-sink';
import { syntheticRun } from './synthetic-run';
import { writeRun } from './run-sink';

let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-inspect-'));
  const events = syntheticRun({ runDir: path.join(dir, 'r'), runId: 'r', n: 30, epochs: 2, batch: 10 });
  await writeRun(events);
  await firstValueFrom(from(events).pipe(arrowSink()));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('inspectFile: schema, row count, head (timestamps as ISO UTC) of Parquet and Arrow files', () => {
  const p = inspectFile(path.join(dir, 'r', 'steps.parquet'), 2);
  expect(p.format).toBe('parquet');
  expect(p.rows).toBe(6); // 2 epochs × 3 steps
  expect(p.schema.map((c) => c.name)).toEqual(['run_id', 'epoch', 'step', 'loss', 'grad_norm_sq', 'lr', 'ms', 'batch_size', 'time']);
  expect(p.head).toHaveLength(2);
  expect(p.head[0]).toMatchObject({ run_id: 'r', epoch: 1, step: 0, batch_size: 10, time: '2024-05-06T07:10:00.000Z' });
  expect(p.metadata['atflow.run_id']).toBe('r');
  const a = inspectFile(path.join(dir, 'r', 'arrow', 'examples.arrows'), 1);
  expect(a.format).toBe('arrow');
  expect(a.rows).toBe(30 * 2 * 2);
  expect(a.schema.find((c) => c.name === 'is_noisy')!.type).toBe('Bool');
  expect(tableFiles(path.join(dir, 'r')).filter((f) => f.includes('examples'))).toHaveLength(4 + 1);
});

test('atflow inspect (CLI): text for a run folder, JSON for a file, a named error for a bad path', () => {
  const bin = path.join(__dirname, '..', '..', 'bin', 'atflow.js');
  const json = JSON.parse(execFileSync('node', [bin, 'inspect', path.join(dir, 'r', 'labels.parquet'), '--json', '-n', '3'], { encoding: 'utf8' }));
  expect(json.rows).toBe(30);
  expect(json.head).toHaveLength(3);
  const text = execFileSync('node', [bin, 'inspect', path.join(dir, 'r'), '-n', '0'], { encoding: 'utf8' });
  expect(text).toContain(`${path.join(dir, 'r', 'examples', 'epoch-0002', 'part-eval.parquet')}  (parquet, 30 rows)`);
  let err = '';
  try {
    execFileSync('node', [bin, 'inspect', path.join(dir, 'missing.parquet')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    err = String((e as { stderr: string }).stderr);
  }
  expect(err).toContain('missing.parquet does not exist');
});
