import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { computeDataMap, exampleDynamics } from '../../src/report/data-map';
import { duck } from '../logs/duck';
import { runTiny, tinyConfig, tinyOverrides } from '../logs/tiny-runs';
import { docQueries } from '../logs/doc-queries';

/**
 * The report's data-map aggregates (TypeScript, at run time) against the DuckDB queries that
 * docs/queries.md ships, on the examples table of a real (tiny) robust-overfitting run.
 */

let dir: string;
let runDir: string;
let q: Record<string, string>;
const sql = (name: string) => duck(q[name].replaceAll('runs/<run_id>', runDir));

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-datamap-'));
  const cfg = tinyConfig(path.join(dir, 'configs'), 'ro', 'robust-overfitting-cpu.json', tinyOverrides({ epochs: 5, trainSize: 96 }));
  [runDir] = await runTiny(cfg, path.join(dir, 'runs'), 'pgd-at');
  q = docQueries();
}, 300000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('data_map: per-example confidence, variability, forgetting and final correctness = DuckDB', async () => {
  const rows = await sql('data_map');
  const ts = exampleDynamics(runDir)!;
  expect(ts.phase).toBe('eval');
  expect(rows.length).toBe(96);
  expect(ts.rows.length).toBe(96);
  let forgets = 0;
  rows.forEach((r, i) => {
    const t = ts.rows[i];
    expect(t.example).toBe(r.example);
    expect(t.is_noisy).toBe(r.is_noisy);
    for (const k of ['confidence_adv', 'variability_adv', 'confidence_clean', 'variability_clean'] as const)
      expect(t[k]).toBeCloseTo(r[k], 9);
    expect(t.forgetting_events).toBe(r.forgetting_events);
    expect(t.robust_forgetting_events).toBe(r.robust_forgetting_events);
    expect(t.final_correct_clean).toBe(r.final_correct_clean);
    expect(t.final_correct_adv).toBe(r.final_correct_adv);
    forgets += r.forgetting_events + r.robust_forgetting_events;
  });
  expect(rows.some((r) => r.is_noisy)).toBe(true);
  expect(forgets).toBeGreaterThan(0); // the comparison covers forgetting, not only zeros
});

test('data_map_binned, forgetting_histogram, data_map_last_epoch = DuckDB', async () => {
  const dm = computeDataMap(runDir)!;
  const binned = await sql('data_map_binned');
  const key = (c: Record<string, unknown>) => `${c.view}|${c.outcome}|${c.confidence_bin}|${c.variability_bin}|${c.examples}`;
  const mine = dm.cells.map((c) => key(c as unknown as Record<string, unknown>)).sort();
  expect(mine).toEqual(binned.map(key).sort());
  expect(dm.cells.reduce((s, c) => s + c.examples, 0)).toBe(2 * 96);
  const hist = await sql('forgetting_histogram');
  expect(dm.forgetting).toEqual(hist);
  const last = await sql('data_map_last_epoch');
  expect(last.length).toBe(dm.lastEpochConfidence.length);
  last.forEach((r, i) => {
    const t = dm.lastEpochConfidence[i];
    expect(t.is_noisy).toBe(r.is_noisy);
    expect(t.examples).toBe(r.examples);
    expect(t.p_label_adv).toBeCloseTo(r.p_label_adv, 9);
    expect(t.p_label_clean).toBeCloseTo(r.p_label_clean, 9);
  });
});
