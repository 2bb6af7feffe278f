import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import type { ExampleColumns, EventColumns, Phase } from '../../src/core/records';
import type { RunEvent } from '../../src/core/run-event';
import { detectEvents, detectRunEvents, EventDetector } from '../../src/operators/detect-events';

/** Rows of one batch: [example, correct_clean, correct_adv, is_noisy]. */
function batch(epoch: number, rows: [number, number, number, number][], phase: Phase = 'eval'): ExampleColumns {
  const m = rows.length;
  const f = () => new Float32Array(m);
  return {
    epoch,
    phase,
    example: Int32Array.from(rows.map((r) => r[0])),
    label_true: new Int32Array(m),
    label_used: new Int32Array(m),
    is_noisy: Uint8Array.from(rows.map((r) => r[3])),
    loss_clean: f(),
    pred_clean: new Int32Array(m),
    correct_clean: Uint8Array.from(rows.map((r) => r[1])),
    p_label_clean: f(),
    margin_clean: f(),
    loss_adv: f(),
    pred_adv: new Int32Array(m),
    correct_adv: Uint8Array.from(rows.map((r) => r[2])),
    p_label_adv: f(),
    margin_adv: f(),
    te_target_entropy: f(),
    te_penalty: f(),
  };
}

/** EventColumns → comparable rows "epoch example event noisy first". */
const rows = (e: EventColumns) =>
  Array.from(e.example, (ex, i) => `${e.epoch[i]} ${ex} ${e.event[i]} ${e.is_noisy[i]} ${e.first_learned_epoch[i]}`);

const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

test('marbles: transitions between consecutive epochs; first observation silent; batches without events dropped', () => {
  newScheduler().run(({ cold, expectObservable }) => {
    const input = cold('a-b-c-d|', {
      a: batch(1, [
        [0, 0, 0, 0],
        [1, 1, 0, 1],
        [2, 1, 1, 0],
      ]),
      b: batch(2, [
        [0, 1, 0, 0],
        [1, 0, 0, 1],
        [2, 1, 1, 0],
      ]), // 0 learned; 1 forgotten
      c: batch(3, [
        [0, 1, 1, 0],
        [1, 1, 1, 1],
        [2, 1, 1, 0],
      ]), // 0 robust_learned; 1 learned + robust_learned
      d: batch(4, [
        [0, 1, 1, 0],
        [1, 1, 1, 1],
        [2, 1, 1, 0],
      ]), // nothing changes → no emission
    });
    expectObservable(input.pipe(detectEvents(), map(rows))).toBe('--b-c--|', {
      b: ['2 0 learned 0 2', '2 1 forgotten 1 1'],
      c: ['3 0 robust_learned 0 2', '3 1 learned 1 1', '3 1 robust_learned 1 1'],
    });
  });
});

test('marbles: only the driving phase counts (train rows ignored by default, used when asked)', () => {
  newScheduler().run(({ cold, expectObservable }) => {
    const values = {
      a: batch(1, [[5, 1, 1, 0]], 'eval'),
      t: batch(2, [[5, 0, 0, 0]], 'train'),
      b: batch(2, [[5, 0, 1, 0]], 'eval'),
      u: batch(3, [[5, 1, 0, 0]], 'train'),
    };
    const input = cold('a-t-b-u|', values);
    expectObservable(input.pipe(detectEvents(), map(rows))).toBe('----b--|', { b: ['2 5 forgotten 0 1'] });
    expectObservable(input.pipe(detectEvents({ phase: 'train' }), map(rows))).toBe('------u|', {
      u: ['3 5 learned 0 3'], // train rows: epoch 2 (0,0) → epoch 3 (1,0)
    });
  });
});

test('examples observed every k epochs or in subsets compare with their own previous observation', () => {
  const d = new EventDetector();
  expect(rows(d.observe(batch(1, [[0, 1, 0, 0]])))).toEqual([]);
  expect(rows(d.observe(batch(2, [[1, 1, 1, 0]])))).toEqual([]); // another example, first seen
  expect(
    rows(
      d.observe(
        batch(5, [
          [0, 0, 1, 0],
          [1, 1, 0, 0],
        ]),
      ),
    ),
  ).toEqual(['5 0 forgotten 0 1', '5 0 robust_learned 0 1', '5 1 robust_forgotten 0 2']);
  // a large index grows the state
  expect(rows(d.observe(batch(6, [[100000, 1, 1, 1]])))).toEqual([]);
  expect(rows(d.observe(batch(7, [[100000, 0, 1, 1]])))).toEqual(['7 100000 forgotten 1 6']);
});

test('exported state resumes exactly: split stream ≡ unsplit stream', () => {
  const stream = [1, 2, 3, 4, 5, 6].map((e) =>
    batch(
      e,
      Array.from({ length: 20 }, (_, i): [number, number, number, number] => [
        i,
        (i * 7 + e * 3) % 5 > 1 ? 1 : 0,
        (i * 3 + e) % 4 > 2 ? 1 : 0,
        i % 4 === 0 ? 1 : 0,
      ]),
    ),
  );
  const whole = new EventDetector();
  const all = stream.flatMap((b) => rows(whole.observe(b)));
  const first = new EventDetector();
  const part1 = stream.slice(0, 3).flatMap((b) => rows(first.observe(b)));
  const saved = JSON.parse(JSON.stringify(first.exportState()));
  const resumed = new EventDetector({ state: saved });
  const part2 = stream.slice(3).flatMap((b) => rows(resumed.observe(b)));
  expect(all.length).toBeGreaterThan(10);
  expect([...part1, ...part2]).toEqual(all);
  expect(() => new EventDetector({ state: { ...saved, correct_adv: [1] } })).toThrow(/different lengths/);
});

test('detectRunEvents: RunEvent stream in, events events out', () => {
  newScheduler().run(({ cold, expectObservable }) => {
    const values: Record<string, RunEvent> = {
      a: { type: 'examples', columns: batch(1, [[3, 0, 0, 1]]) },
      s: { type: 'epoch-start', epoch: 2, lr: 0.1, teWeight: 0, steps: 1 },
      b: { type: 'examples', columns: batch(2, [[3, 1, 1, 1]]) },
    };
    expectObservable(
      cold('a-s-b|', values).pipe(
        detectRunEvents(),
        map((e) => [e.type, ...rows(e.columns)]),
      ),
    ).toBe('----b|', {
      b: ['events', '2 3 learned 1 2', '2 3 robust_learned 1 2'],
    });
  });
});
