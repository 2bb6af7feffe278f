import * as arrow from 'apache-arrow';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { firstValueFrom, from } from 'rxjs';
import type { ExampleColumns } from '../../src/core/records';
import { arrowSink, ArrowStreamFileWriter } from '../../src/sinks/arrow-sink';
import { EXAMPLES_COLUMNS } from '../../src/sinks/tables';
import { syntheticRun } from './synthetic-run';

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-arrow-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('every table is an Arrow IPC stream that apache-arrow reads back with exact values', async () => {
  const runDir = path.join(dir, 'r');
  const events = syntheticRun({ runDir, runId: 'r', n: 120, epochs: 3, batch: 32 });
  const res = await firstValueFrom(from(events).pipe(arrowSink()));
  expect(Object.keys(res.files).sort()).toEqual(['complexity', 'epochs', 'events', 'examples', 'labels', 'steps']);
  const t = arrow.tableFromIPC(fs.readFileSync(path.join(runDir, 'arrow', 'examples.arrows')));
  expect(t.numRows).toBe(120 * 3 * 2);
  expect(t.schema.fields.map((f) => f.name)).toEqual(EXAMPLES_COLUMNS.map((c) => c.name));
  expect(t.schema.metadata.get('atflow.run_id')).toBe('r');
  const exp = events.filter((e) => e.type === 'examples').map((e) => (e as { columns: ExampleColumns }).columns);
  let row = 0;
  for (const c of exp) {
    for (let i = 0; i < c.example.length; i++, row++) {
      const r = t.get(row)!.toJSON();
      expect([r.run_id, r.epoch, r.phase, r.example, r.is_noisy, r.correct_adv, r.loss_adv, r.margin_clean]).toEqual([
        'r', c.epoch, c.phase, c.example[i], c.is_noisy[i] === 1, c.correct_adv[i] === 1, c.loss_adv[i], c.margin_clean[i],
      ]);
      expect(r.te_penalty).toBe(Number.isNaN(c.te_penalty[i]) ? null : c.te_penalty[i]);
    }
  }
  const epochs = arrow.tableFromIPC(fs.readFileSync(path.join(runDir, 'arrow', 'epochs.arrows')));
  expect(epochs.getChild('test_robust_acc')!.toArray()).toEqual(
    Float64Array.from(events.filter((e) => e.type === 'epoch-end').map((e) => (e as { record: { test_robust_acc: number } }).record.test_robust_acc)),
  );
});

test('live tailing: a stream still being written is readable up to its last batch', () => {
  const file = path.join(dir, 'tail.arrows');
  const w = new ArrowStreamFileWriter(file, [{ name: 'i', type: 'int32' }, { name: 'phase', type: 'utf8' }]);
  w.append({ i: Int32Array.of(1, 2, 3), phase: 'train' }, 3);
  const partial = arrow.tableFromIPC(fs.readFileSync(file));
  expect(partial.numRows).toBe(3);
  w.append({ i: Int32Array.of(4, 5), phase: ['eval', 'train'] }, 2);
  expect(arrow.tableFromIPC(fs.readFileSync(file)).numRows).toBe(5);
  w.close();
  const t = arrow.tableFromIPC(fs.readFileSync(file));
  expect(t.getChild('i')!.toArray()).toEqual(Int32Array.of(1, 2, 3, 4, 5));
  expect(t.getChild('phase')!.toArray()).toEqual(['train', 'train', 'train', 'eval', 'train']);
  // a closed stream ends with the end-of-stream marker
  const bytes = fs.readFileSync(file);
  expect(Array.from(bytes.subarray(bytes.length - 8))).toEqual([255, 255, 255, 255, 0, 0, 0, 0]);
});
