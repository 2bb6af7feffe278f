import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExampleColumns, EventColumns, EpochRecord } from '../../src/core/records';
import type { RunEvent } from '../../src/core/run-event';
import { syntheticRun } from './synthetic-run';
import { writeRun } from './run-sink';
import { duck } from './duck';
import { docQueries } from './doc-queries';

let dir: string;
let events: RunEvent[];
let q: Record<string, string>;
const run = (name: string) => duck(q[name].replaceAll('runs/<run_id>', path.join(dir, 'runs', 'r1')));

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-q-'));
  // with test-split rows too: the queries over the training set must filter them out (split = 'train')
  events = syntheticRun({ runDir: path.join(dir, 'runs', 'r1'), runId: 'r1', n: 400, epochs: 5, batch: 50, testSplit: 60 });
  await writeRun(events);
  q = docQueries();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Per example, its rows of one phase in epoch order. */
function perExample(phase: 'train' | 'eval') {
  const m = new Map<
    number,
    { epoch: number; noisy: number; p: number; correct: number; adv: number; margin: number; marginAdv: number }[]
  >();
  for (const ev of events) {
    if (ev.type !== 'examples' || ev.columns.phase !== phase || (ev.columns.split ?? 'train') !== 'train') continue;
    const c: ExampleColumns = ev.columns;
    for (let i = 0; i < c.example.length; i++) {
      const list = m.get(c.example[i]) ?? [];
      list.push({
        epoch: c.epoch,
        noisy: c.is_noisy[i],
        p: c.p_label_clean[i],
        correct: c.correct_clean[i],
        adv: c.correct_adv[i],
        margin: c.margin_clean[i],
        marginAdv: c.margin_adv[i],
      });
      m.set(c.example[i], list);
    }
  }
  for (const l of m.values()) l.sort((a, b) => a.epoch - b.epoch);
  return m;
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('docs/queries.md ships every query', () => {
  expect(Object.keys(q).sort()).toEqual([
    'aum',
    'cartography',
    'data_map',
    'data_map_binned',
    'data_map_last_epoch',
    'events_per_epoch',
    'forgetting',
    'forgetting_histogram',
    'memorized_noisy',
    'robust_overfitting',
    'test_lost_after_best',
  ]);
});

test('cartography = TypeScript confidence / variability / correctness', async () => {
  const rows = await run('cartography');
  const ex = perExample('eval');
  expect(rows.length).toBe(400);
  for (const r of rows) {
    const l = ex.get(r.example)!;
    const ps = l.map((x) => x.p);
    const mu = mean(ps);
    expect(r.is_noisy).toBe(l[0].noisy === 1);
    expect(r.confidence).toBeCloseTo(mu, 12);
    expect(r.variability).toBeCloseTo(Math.sqrt(mean(ps.map((p) => (p - mu) ** 2))), 9);
    expect(r.correctness).toBeCloseTo(mean(l.map((x) => x.correct)), 12);
  }
});

test('forgetting counts = transitions counted in TypeScript, and = the detectEvents rows', async () => {
  const rows = await run('forgetting');
  const ex = perExample('eval');
  const fromEvents = new Map<number, number>();
  for (const ev of events) {
    if (ev.type !== 'events' || ev.columns.phase !== 'eval') continue;
    const c: EventColumns = ev.columns;
    c.event.forEach((k, i) => k === 'forgotten' && fromEvents.set(c.example[i], (fromEvents.get(c.example[i]) ?? 0) + 1));
  }
  let total = 0;
  for (const r of rows) {
    const l = ex.get(r.example)!;
    let f = 0;
    let fa = 0;
    for (let i = 1; i < l.length; i++) {
      if (l[i - 1].correct === 1 && l[i].correct === 0) f++;
      if (l[i - 1].adv === 1 && l[i].adv === 0) fa++;
    }
    expect([r.forgetting_events, r.robust_forgetting_events, r.ever_learned]).toEqual([f, fa, l.some((x) => x.correct === 1)]);
    expect(r.forgetting_events).toBe(fromEvents.get(r.example) ?? 0);
    total += f;
  }
  expect(total).toBeGreaterThan(20);
});

test('events per epoch split noisy / clean = counts of the in-memory events', async () => {
  const rows = await run('events_per_epoch');
  const counts = new Map<string, number>();
  for (const ev of events) {
    if (ev.type !== 'events') continue;
    ev.columns.event.forEach((k, i) => {
      const key = `${ev.columns.epoch[i]}|${ev.columns.phase}|${k}|${ev.columns.is_noisy[i] === 1}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    });
  }
  expect(new Map(rows.map((r) => [`${r.epoch}|${r.phase}|${r.event}|${r.is_noisy}`, r.n]))).toEqual(counts);
  expect(new Set(rows.map((r) => r.phase))).toEqual(new Set(['train', 'eval']));
});

test('AUM = mean training margin per example, ascending', async () => {
  const rows = await run('aum');
  const ex = perExample('train');
  expect(rows.length).toBe(400);
  for (const r of rows) {
    const l = ex.get(r.example)!;
    expect(r.aum).toBeCloseTo(mean(l.map((x) => x.margin)), 12);
    expect(r.aum_adv).toBeCloseTo(mean(l.map((x) => x.marginAdv)), 12);
  }
  for (let i = 1; i < rows.length; i++) expect(rows[i].aum).toBeGreaterThanOrEqual(rows[i - 1].aum);
  // noisy labels sit low: the mean AUM of noisy examples is below that of clean ones
  const avg = (noisy: boolean) => mean(rows.filter((r) => r.is_noisy === noisy).map((r) => r.aum));
  expect(avg(true)).toBeLessThan(avg(false));
});

test('robust overfitting curve = running best and gaps from the epoch records', async () => {
  const rows = await run('robust_overfitting');
  const recs = events.filter((e) => e.type === 'epoch-end').map((e) => (e as { record: EpochRecord }).record);
  let best = -Infinity;
  expect(rows.length).toBe(recs.length);
  recs.forEach((r, i) => {
    best = Math.max(best, r.test_robust_acc);
    expect(rows[i].epoch).toBe(r.epoch);
    expect(rows[i].best_so_far).toBe(best);
    expect(rows[i].below_best).toBeCloseTo(best - r.test_robust_acc, 15);
    expect(rows[i].standard_gap).toBeCloseTo(r.train_clean_acc - r.test_clean_acc, 15);
    expect(rows[i].robust_gap).toBeCloseTo(r.train_robust_acc - r.test_robust_acc, 15);
  });
  expect(rows[rows.length - 1].below_best).toBeGreaterThan(0); // the synthetic run overfits after epoch 3
});

test('memorized noisy labels over time = per-epoch fractions computed in TypeScript', async () => {
  const rows = await run('memorized_noisy');
  const acc = new Map<string, { n: number; c: number; a: number }>();
  for (const ev of events) {
    if (ev.type !== 'examples' || ev.columns.phase !== 'eval' || (ev.columns.split ?? 'train') !== 'train') continue;
    const c = ev.columns;
    for (let i = 0; i < c.example.length; i++) {
      const k = `${c.epoch}|${c.is_noisy[i] === 1}`;
      const s = acc.get(k) ?? { n: 0, c: 0, a: 0 };
      s.n++;
      s.c += c.correct_clean[i];
      s.a += c.correct_adv[i];
      acc.set(k, s);
    }
  }
  expect(rows.length).toBe(acc.size);
  for (const r of rows) {
    const s = acc.get(`${r.epoch}|${r.is_noisy}`)!;
    expect(r.examples).toBe(s.n);
    expect(r.fit_clean).toBeCloseTo(s.c / s.n, 15);
    expect(r.fit_adversarial).toBeCloseTo(s.a / s.n, 15);
  }
});

test('test examples robust at the best epoch and not at the final one = the in-memory test rows', async () => {
  const rows = await run('test_lost_after_best');
  const records = events.filter((e) => e.type === 'epoch-end').map((e) => (e as { record: { epoch: number; best_epoch: number } }).record);
  const last = records[records.length - 1];
  expect(last.best_epoch).toBeLessThan(last.epoch);
  const robustAt = (epoch: number) => {
    const m = new Map<number, number>();
    for (const ev of events) {
      if (ev.type !== 'examples' || ev.columns.split !== 'test' || ev.columns.epoch !== epoch) continue;
      ev.columns.example.forEach((x, i) => m.set(x, ev.columns.correct_adv[i]));
    }
    return m;
  };
  const atBest = robustAt(last.best_epoch);
  const atFinal = robustAt(last.epoch);
  const expected = [...atBest.keys()].filter((x) => atBest.get(x) === 1 && atFinal.get(x) === 0).sort((a, b) => a - b);
  expect(expected.length).toBeGreaterThan(0);
  expect(rows.map((r) => r.example)).toEqual(expected);
});
