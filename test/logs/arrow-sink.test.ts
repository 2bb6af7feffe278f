import * as arrow from 'apache-arrow';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { firstValueFrom, from } from 'rxjs';
import type { RunEvent } from '../../src/core/run-event';
import type { EpochRecord, ExampleColumns } from '../../src/core/records';
import { AtflowError } from '../../src/core/errors';
import { arrowSink, ArrowRunWriter, ArrowStreamFileWriter } from '../../src/logs/arrow-sink';
import { keptBatches } from '../../src/logs/arrow-stream-prefix';
import { EXAMPLES_COLUMNS, TABLES } from '../../src/logs/tables';
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
        'r',
        c.epoch,
        c.phase,
        c.example[i],
        c.is_noisy[i] === 1,
        c.correct_adv[i] === 1,
        c.loss_adv[i],
        c.margin_clean[i],
      ]);
      expect(r.te_penalty).toBe(Number.isNaN(c.te_penalty[i]) ? null : c.te_penalty[i]);
    }
  }
  const epochs = arrow.tableFromIPC(fs.readFileSync(path.join(runDir, 'arrow', 'epochs.arrows')));
  expect(epochs.getChild('test_robust_acc')!.toArray()).toEqual(
    Float64Array.from(
      events.filter((e) => e.type === 'epoch-end').map((e) => (e as { record: { test_robust_acc: number } }).record.test_robust_acc),
    ),
  );
});

test('live tailing: a stream still being written is readable up to its last batch', () => {
  const file = path.join(dir, 'tail.arrows');
  const w = new ArrowStreamFileWriter(file, [
    { name: 'i', type: 'int32' },
    { name: 'phase', type: 'utf8' },
  ]);
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

/** The rows of a stream, as plain objects, in stream order. */
const streamRows = (file: string) =>
  arrow
    .tableFromIPC(fs.readFileSync(file))
    .toArray()
    .map((r) => r.toJSON());

/** The second half of a batch message of `defs`: what a process killed inside a write leaves at the end. */
function tornBatch(defs: typeof EXAMPLES_COLUMNS, cols: Record<string, unknown>): Uint8Array {
  const scratch = path.join(dir, `scratch-${Math.random()}.arrows`);
  const w = new ArrowStreamFileWriter(scratch, defs);
  const header = fs.statSync(scratch).size;
  w.append(cols as never, 1);
  const bytes = fs.readFileSync(scratch);
  return bytes.subarray(header, header + Math.floor((bytes.length - header) / 2));
}

describe('a resumed run continues its streams', () => {
  const options = { n: 40, epochs: 4, batch: 16 };
  const now = () => 1_700_000_000_000;

  it('keeps the epochs before the checkpoint, drops later rows and a torn tail, and ends equal to an uninterrupted run', () => {
    const refDir = path.join(dir, 'resume-ref');
    const reference = new ArrowRunWriter({ now });
    for (const ev of syntheticRun({ runDir: refDir, ...options })) reference.handle(ev);

    // the first process: epochs 1-2 and part of epoch 3, then killed (no run-end, no end-of-stream marker)
    const runDir = path.join(dir, 'resume-killed');
    const events = syntheticRun({ runDir, ...options });
    const killed = new ArrowRunWriter({ now });
    const epoch3 = events.findIndex((e) => e.type === 'epoch-start' && e.epoch === 3);
    for (const ev of events.slice(0, epoch3 + 6)) killed.handle(ev);
    expect(streamRows(path.join(runDir, 'arrow', 'examples.arrows')).some((r) => r.epoch === 3)).toBe(true);
    const arrowDir = path.join(runDir, 'arrow');
    fs.appendFileSync(
      path.join(arrowDir, 'examples.arrows'),
      tornBatch(EXAMPLES_COLUMNS, {
        ...Object.fromEntries(EXAMPLES_COLUMNS.map((c) => [c.name, 0])),
        run_id: 'x',
        phase: 'train',
        split: 'train',
        epoch: 1,
      }),
    );
    fs.writeFileSync(path.join(arrowDir, '.steps.arrows.4242.tmp'), 'a rewrite killed half-way');

    // the resumed process: run-start with firstEpoch 3 and the checkpoint's records, labels, then epochs 3-4
    const start = events[0] as Extract<RunEvent, { type: 'run-start' }>;
    const prior = events.filter((e) => e.type === 'epoch-end' && e.record.epoch < 3).map((e) => (e as { record: EpochRecord }).record);
    const resumed = new ArrowRunWriter({ now });
    for (const ev of [{ ...start, firstEpoch: 3, priorEpochs: prior }, events[1], ...events.slice(epoch3)]) resumed.handle(ev);

    expect(Object.keys(resumed.result().files).sort()).toEqual(Object.keys(TABLES).sort());
    for (const name of Object.keys(TABLES)) {
      const got = path.join(arrowDir, `${name}.arrows`);
      const want = path.join(refDir, 'arrow', `${name}.arrows`);
      expect([name, streamRows(got)]).toEqual([name, streamRows(want)]);
      // the same wall clock and run-start: byte for byte the uninterrupted stream
      expect(fs.readFileSync(got).equals(fs.readFileSync(want))).toBe(true);
      expect(resumed.result().rows[name as keyof typeof TABLES]).toBe(reference.result().rows[name as keyof typeof TABLES]);
    }
    expect(fs.readdirSync(arrowDir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a fresh start (firstEpoch 1) removes the streams an earlier process left, even those it does not write again', () => {
    const runDir = path.join(dir, 'restart');
    const events = syntheticRun({ runDir, ...options });
    const first = new ArrowRunWriter({ now });
    for (const ev of events) first.handle(ev);
    const again = new ArrowRunWriter({ now });
    for (const ev of events.filter((e) => e.type !== 'complexity')) again.handle(ev);
    expect(fs.existsSync(path.join(runDir, 'arrow', 'complexity.arrows'))).toBe(false);
    expect(streamRows(path.join(runDir, 'arrow', 'epochs.arrows')).map((r) => r.epoch)).toEqual([1, 2, 3, 4]);
  });

  it('a batch with rows of several epochs keeps only the rows before the resumed epoch', () => {
    const defs = [
      { name: 'epoch', type: 'int32' },
      { name: 'v', type: 'float64' },
      { name: 's', type: 'utf8' },
    ] as const;
    const file = path.join(dir, 'mixed.arrows');
    const w = new ArrowStreamFileWriter(file, defs);
    w.append(
      { epoch: Int32Array.of(1, 2, 3, 1, 3, 3, 2), v: Float64Array.of(0, 1, 2, 3, 4, 5, 6), s: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] },
      7,
    );
    w.append({ epoch: Int32Array.of(3, 3), v: Float64Array.of(7, 8), s: 'h' }, 2);
    w.append({ epoch: Int32Array.of(2), v: Float64Array.of(9), s: 'i' }, 1);
    w.close();
    const rewritten = new ArrowStreamFileWriter(
      file,
      defs,
      undefined,
      keptBatches(file, defs, (e) => e < 3),
    );
    expect(rewritten.rowsWritten).toBe(5);
    rewritten.append({ epoch: Int32Array.of(3), v: Float64Array.of(10), s: 'j' }, 1);
    rewritten.close();
    expect(streamRows(file)).toEqual([
      { epoch: 1, v: 0, s: 'a' },
      { epoch: 2, v: 1, s: 'b' },
      { epoch: 1, v: 3, s: 'd' },
      { epoch: 2, v: 6, s: 'g' },
      { epoch: 2, v: 9, s: 'i' },
      { epoch: 3, v: 10, s: 'j' },
    ]);
  });

  it('refuses to continue a stream of other columns, naming the file', () => {
    const file = path.join(dir, 'other.arrows');
    new ArrowStreamFileWriter(file, [{ name: 'epoch', type: 'int32' }]).close();
    const read = () => [
      ...keptBatches(
        file,
        [
          { name: 'epoch', type: 'int32' },
          { name: 'v', type: 'float64' },
        ],
        () => true,
      ),
    ];
    expect(read).toThrow(AtflowError);
    expect(read).toThrow(/other\.arrows: its columns \(epoch: Int32\) are not this atflow's/);
    // a resumed run stops with that error (not a generic write error) and leaves the stream as it was
    const before = fs.readFileSync(file);
    expect(
      () =>
        new ArrowStreamFileWriter(
          file,
          [
            { name: 'epoch', type: 'int32' },
            { name: 'v', type: 'float64' },
          ],
          undefined,
          keptBatches(
            file,
            [
              { name: 'epoch', type: 'int32' },
              { name: 'v', type: 'float64' },
            ],
            () => true,
          ),
        ),
    ).toThrow(expect.objectContaining({ code: 'RESUME' }));
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect([...keptBatches(path.join(dir, 'missing.arrows'), [], () => true)]).toEqual([]);
  });
});
