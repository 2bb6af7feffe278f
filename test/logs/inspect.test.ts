import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { firstValueFrom, from } from 'rxjs';
import { inspectFile } from '../../src/cli/commands/inspect';
import { tablesOf } from '../../src/logs/table-files';
import { arrowSink } from '../../src/logs/arrow-sink';
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
  // the examples parts are one table (the folder); the Arrow sink's examples stream is another
  expect(
    tablesOf(path.join(dir, 'r'))
      .filter((t) => t.label.includes('examples'))
      .map((t) => [path.relative(dir, t.label), t.files.length]),
  ).toEqual([
    [path.join('r', 'arrow', 'examples.arrows'), 1],
    [path.join('r', 'examples'), 4],
  ]);
});

/** The CLI as npm installs it: a symlink named `atflow` to bin/atflow.js (runs dist/). */
function atflow(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const bin = path.join(dir, 'bin', 'atflow');
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.symlinkSync(path.join(__dirname, '..', '..', 'bin', 'atflow.js'), bin);
  }
  return spawnSync(bin, args, { encoding: 'utf8', timeout: 120_000 });
}

test('atflow inspect (CLI): text for a run folder, JSON for a file, a named error for a bad path', () => {
  const json = JSON.parse(atflow('inspect', path.join(dir, 'r', 'labels.parquet'), '--json', '-n', '3').stdout);
  expect(json.rows).toBe(30);
  expect(json.head).toHaveLength(3);
  const text = atflow('inspect', path.join(dir, 'r'), '-n', '0').stdout;
  expect(text).toContain(`${path.join(dir, 'r', 'examples')}  (parquet, 4 files, 120 rows)`);
  expect(text).not.toContain('part-eval.parquet');
  const missing = atflow('inspect', path.join(dir, 'missing.parquet'));
  expect(missing.status).toBe(2);
  expect(missing.stderr).toContain('missing.parquet does not exist');
});

test('atflow inspect <run>/examples and a glob of its parts: one table, every part counted, rows in epoch order', () => {
  const folder = JSON.parse(atflow('inspect', path.join(dir, 'r', 'examples'), '--json', '-n', '2').stdout);
  expect(folder).toMatchObject({ file: path.join(dir, 'r', 'examples'), format: 'parquet', files: 4, rows: 2 * 2 * 30 });
  expect(folder.schema.find((c: { name: string }) => c.name === 'epoch').type).toBe('Int32');
  expect(folder.head.map((r: { epoch: number }) => r.epoch)).toEqual([1, 1]);
  const glob = path.join(dir, 'r', 'examples', '*', '*.parquet');
  const globbed = JSON.parse(atflow('inspect', glob, '--json', '-n', '2').stdout);
  expect({ ...globbed, file: undefined }).toEqual({ ...folder, file: undefined });
  expect(globbed.file).toBe(glob);
  const text = atflow('inspect', path.join(dir, 'r', 'examples', '**', 'part-eval.parquet'), '-n', '1').stdout;
  expect(text.split('\n')[0]).toBe(`${path.join(dir, 'r', 'examples', '**', 'part-eval.parquet')}  (parquet, 2 files, 60 rows)`);
});

test('atflow inspect: a glob over different tables, or matching nothing, is a clear error', () => {
  const mixed = atflow('inspect', path.join(dir, 'r', '*.parquet'));
  expect(mixed.status).toBe(2);
  expect(mixed.stderr).toMatch(
    /matches files of different tables: .*complexity\.parquet has \(run_id: Utf8, epoch: Int32, measure: Utf8, value: Float64\), .*epochs\.parquet has/,
  );
  const none = atflow('inspect', path.join(dir, 'r', 'examples', '*', '*.csv'));
  expect(none.status).toBe(2);
  expect(none.stderr).toContain('no .parquet/.arrow files match');
});
