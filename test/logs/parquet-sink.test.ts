import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExampleColumns, EventColumns, StepRecord, EpochRecord } from '../../src/core/records';
import type { RunEvent, RunEventOf } from '../../src/core/run-event';
import { computeDataMap } from '../../src/report/data-map';
import { loadReportRun } from '../../src/report/report-data';
import { EXAMPLES_COLUMNS } from '../../src/logs/tables';
import { exampleEpochName, exampleEpochOf } from '../../src/store/run-folder';
import { syntheticRun } from './synthetic-run';
import { writeRun } from './run-sink';
import { duck, lit } from './duck';

const N = 300;
const EPOCHS = 4;
const TE_START = 3;
let dir: string;
let events: RunEvent[];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-pq-'));
  events = syntheticRun({ runDir: path.join(dir, 'run1'), runId: 'run1', n: N, epochs: EPOCHS, teStart: TE_START });
  await writeRun(events);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const run = () => path.join(dir, 'run1');
const examplesGlob = () => lit(path.join(run(), 'examples', '*', '*.parquet'));
const readExamples = (sel: string, rest = '') => duck(`select ${sel} from read_parquet(${examplesGlob()}) ${rest}`);

describe('parquet sink: run folder layout', () => {
  test('every table, spec.json and _SUCCESS exist; one part per epoch and phase; no temp files', () => {
    const files = fs.readdirSync(run()).sort();
    expect(files).toEqual([
      '_SUCCESS',
      'complexity.parquet',
      'epochs.parquet',
      'events.parquet',
      'examples',
      'labels.parquet',
      'spec.json',
      'steps.parquet',
    ]);
    const parts = fs.readdirSync(path.join(run(), 'examples')).sort();
    // plain folder names, not Hive's epoch=0001: the files carry `epoch` (see log-readers.test.ts)
    expect(parts).toEqual(['epoch-0001', 'epoch-0002', 'epoch-0003', 'epoch-0004']);
    for (const p of parts)
      expect(fs.readdirSync(path.join(run(), 'examples', p)).sort()).toEqual(['part-eval.parquet', 'part-train.parquet']);
    const spec = JSON.parse(fs.readFileSync(path.join(run(), 'spec.json'), 'utf8'));
    expect(spec.run_id).toBe('run1');
    expect(spec.seed).toBe(7);
    expect(spec.backend.name).toBe('cpu');
    expect(spec.versions['parquet-wasm']).toBe('0.8.0');
    expect(spec.spec.meta.trainer).toBe('pgd-at');
  });
});

describe('parquet sink: DuckDB reads back exact values', () => {
  test('examples has exactly N × epochs × phases rows and the columns of DESIGN.md in order', async () => {
    const [{ n }] = await readExamples('count(*) as n');
    expect(n).toBe(N * EPOCHS * 2);
    const cols = await duck(
      `describe select * from read_parquet(${lit(path.join(run(), 'examples', 'epoch-0001', 'part-train.parquet'))})`,
    );
    expect(cols.map((c) => c.column_name)).toEqual(EXAMPLES_COLUMNS.map((c) => c.name));
    const types = Object.fromEntries(cols.map((c) => [c.column_name, c.column_type]));
    expect(types).toMatchObject({
      example: 'INTEGER',
      is_noisy: 'BOOLEAN',
      correct_clean: 'BOOLEAN',
      loss_clean: 'FLOAT',
      phase: 'VARCHAR',
      te_penalty: 'FLOAT',
    });
  });

  test('every examples value equals the in-memory columns (float32 exact; NaN → null before TE)', async () => {
    const rows = await readExamples('*', 'order by epoch, phase, example');
    const expected = new Map<string, ExampleColumns & { i: number }>();
    for (const ev of events) {
      if (ev.type !== 'examples') continue;
      const c = ev.columns;
      for (let i = 0; i < c.example.length; i++) expected.set(`${c.epoch}/${c.phase}/${c.example[i]}`, { ...c, i });
    }
    expect(rows.length).toBe(expected.size);
    let nulls = 0;
    for (const r of rows) {
      const c = expected.get(`${r.epoch}/${r.phase}/${r.example}`)!;
      expect(c).toBeDefined();
      const i = c.i;
      expect(r.run_id).toBe('run1');
      for (const k of ['label_true', 'label_used', 'pred_clean', 'pred_adv'] as const) expect(r[k]).toBe(c[k][i]);
      for (const k of ['is_noisy', 'correct_clean', 'correct_adv'] as const) expect(r[k]).toBe(c[k][i] === 1);
      for (const k of ['loss_clean', 'p_label_clean', 'margin_clean', 'loss_adv', 'p_label_adv', 'margin_adv'] as const)
        expect(r[k]).toBe(c[k][i]);
      for (const k of ['te_target_entropy', 'te_penalty'] as const) {
        if (Number.isNaN(c[k][i])) {
          expect(r[k]).toBeNull();
          nulls++;
        } else expect(r[k]).toBe(c[k][i]);
      }
    }
    expect(nulls).toBe(2 * N * (TE_START - 1) * 2);
  });

  test('labels, events, steps, epochs and complexity match the events fed in', async () => {
    const labels = events.find((e) => e.type === 'labels') as RunEventOf<'labels'>;
    const lrows = await duck(`select * from read_parquet(${lit(path.join(run(), 'labels.parquet'))}) order by example`);
    expect(lrows.length).toBe(N);
    lrows.forEach((r, i) => {
      expect([r.example, r.label_true, r.label_used, r.is_noisy]).toEqual([
        labels.example[i],
        labels.label_true[i],
        labels.label_used[i],
        labels.label_true[i] !== labels.label_used[i],
      ]);
    });

    const evs = events.filter((e) => e.type === 'events').map((e) => (e as { columns: EventColumns }).columns);
    const expEvents = evs.flatMap((c) =>
      Array.from(c.example, (ex, i) => `${c.epoch[i]}|${ex}|${c.event[i]}|${c.is_noisy[i] === 1}|${c.first_learned_epoch[i]}`),
    );
    const erows = await duck(`select * from read_parquet(${lit(path.join(run(), 'events.parquet'))})`);
    expect(expEvents.length).toBeGreaterThan(50);
    expect(erows.map((r) => `${r.epoch}|${r.example}|${r.event}|${r.is_noisy}|${r.first_learned_epoch}`)).toEqual(expEvents);

    const steps = events.filter((e) => e.type === 'step').map((e) => (e as { record: StepRecord }).record);
    const srows = await duck(
      `select *, typeof(time) as tt, epoch_ms(time) as tms from read_parquet(${lit(path.join(run(), 'steps.parquet'))})`,
    );
    expect(srows.length).toBe(steps.length);
    srows.forEach((r, i) => {
      expect([r.epoch, r.step, r.loss, r.grad_norm_sq, r.lr, r.ms, r.batch_size]).toEqual([
        steps[i].epoch,
        steps[i].step,
        steps[i].loss,
        steps[i].grad_norm_sq,
        steps[i].lr,
        steps[i].ms,
        steps[i].batch_size,
      ]);
      expect(r.tt).toBe('TIMESTAMP WITH TIME ZONE');
      expect(r.tms).toBe(Date.parse('2024-05-06T07:10:00.000Z'));
    });

    const epochs = events.filter((e) => e.type === 'epoch-end').map((e) => (e as { record: EpochRecord }).record);
    const prows = await duck(
      `select * exclude (time, run_id) from read_parquet(${lit(path.join(run(), 'epochs.parquet'))}) order by epoch`,
    );
    expect(prows).toEqual(epochs.map((r) => ({ ...r })));

    const crows = await duck(
      `select epoch, measure, value from read_parquet(${lit(path.join(run(), 'complexity.parquet'))}) order by epoch, measure`,
    );
    const expC = events
      .filter((e) => e.type === 'complexity')
      .flatMap((e) => {
        const c = e as RunEventOf<'complexity'>;
        return Object.keys(c.measures)
          .sort()
          .map((m) => ({ epoch: c.epoch, measure: m, value: c.measures[m] }));
      });
    expect(crows).toEqual(expC);
  });

  test("run metadata is in every file's key-value metadata; ZSTD compression", async () => {
    const kv = await duck(
      `select decode(key) as k, decode(value) as v from parquet_kv_metadata(${lit(path.join(run(), 'examples', 'epoch-0002', 'part-eval.parquet'))})`,
    );
    const m = Object.fromEntries(kv.map((r) => [r.k, r.v]));
    expect(m['atflow.run_id']).toBe('run1');
    expect(m['atflow.seed']).toBe('7');
    expect(JSON.parse(m['atflow.backend']).name).toBe('cpu');
    expect(JSON.parse(m['atflow.spec']).meta.attack.steps).toBe(10);
    expect(JSON.parse(m['atflow.versions'])['apache-arrow']).toBe('21.2.0');
    const comp = await duck(`select distinct compression from parquet_metadata(${lit(path.join(run(), 'steps.parquet'))})`);
    expect(comp.map((r) => r.compression)).toEqual(['ZSTD']);
  });
});

describe('parquet sink: runs that do not complete', () => {
  test('run-end failed: tables written, no _SUCCESS', async () => {
    const d = path.join(dir, 'failed');
    const evs = syntheticRun({ runDir: d, n: 40, epochs: 2, batch: 16 }).map((e): RunEvent =>
      e.type === 'run-end' ? { ...e, status: 'failed', error: 'boom' } : e,
    );
    const res = await writeRun(evs);
    expect(res.success).toBe(false);
    expect(fs.existsSync(path.join(d, '_SUCCESS'))).toBe(false);
    const [{ n }] = await duck(`select count(*) as n from read_parquet(${lit(path.join(d, 'examples', '*', '*.parquet'))})`);
    expect(n).toBe(40 * 2 * 2);
  });

  test('a resumed run keeps the earlier epochs of events/epochs/steps/complexity', async () => {
    const d = path.join(dir, 'resumed');
    const all = syntheticRun({ runDir: d, n: 40, epochs: 3, batch: 16 });
    const start = all[0] as RunEventOf<'run-start'>;
    // first process: epochs 1-2, then killed (stream completes without run-end)
    const cut = all.findIndex((e) => e.type === 'epoch-start' && e.epoch === 3);
    await writeRun(all.slice(0, cut));
    // second process resumes at epoch 2 (the last checkpoint was epoch 1): epoch 2 is redone
    const from2 = all.findIndex((e) => e.type === 'epoch-start' && e.epoch === 2);
    await writeRun([{ ...start, firstEpoch: 2 }, ...all.slice(from2)]);
    const rows = await duck(
      `select epoch, count(*) as n from read_parquet(${lit(path.join(d, 'epochs.parquet'))}) group by epoch order by epoch`,
    );
    expect(rows).toEqual([
      { epoch: 1, n: 1 },
      { epoch: 2, n: 1 },
      { epoch: 3, n: 1 },
    ]);
    const steps = await duck(
      `select epoch, count(*) as n from read_parquet(${lit(path.join(d, 'steps.parquet'))}) group by epoch order by epoch`,
    );
    expect(steps).toEqual([1, 2, 3].map((e) => ({ epoch: e, n: 3 })));
    expect(fs.existsSync(path.join(d, '_SUCCESS'))).toBe(true);
  });
});

describe('a run folder of the earlier layout (Hive-style examples/epoch=NNNN/)', () => {
  /** Writes epochs 1-2 of a run, then names its example folders as earlier versions did (the files are the same). */
  async function legacyRun(d: string, epochs: number): Promise<RunEvent[]> {
    const all = syntheticRun({ runDir: d, n: 40, epochs, batch: 16 });
    const cut = all.findIndex((e) => e.type === 'epoch-start' && e.epoch === 3);
    await writeRun(cut < 0 ? all : all.slice(0, cut));
    const root = path.join(d, 'examples');
    for (const f of fs.readdirSync(root)) fs.renameSync(path.join(root, f), path.join(root, f.replace('epoch-', 'epoch=')));
    return all;
  }

  test('the report still reads it: the same data map as the new layout gives', async () => {
    const now = path.join(dir, 'layout-now');
    await writeRun(syntheticRun({ runDir: now, n: 40, epochs: 2, batch: 16 }));
    const legacy = path.join(dir, 'layout-legacy');
    await legacyRun(legacy, 2);
    expect(fs.readdirSync(path.join(legacy, 'examples')).sort()).toEqual(['epoch=0001', 'epoch=0002']);
    const dm = computeDataMap(now);
    expect(dm).not.toBeNull();
    expect(computeDataMap(legacy)).toEqual(dm);
    expect(loadReportRun(legacy).dataMap).toEqual(dm);
  });

  test('resuming it renames its folders: one layout, which DuckDB reads with an INTEGER epoch', async () => {
    const d = path.join(dir, 'legacy-resumed');
    const all = await legacyRun(d, 3);
    const start = all[0] as RunEventOf<'run-start'>;
    const from3 = all.findIndex((e) => e.type === 'epoch-start' && e.epoch === 3);
    await writeRun([{ ...start, firstEpoch: 3 }, ...all.slice(from3)]);
    expect(fs.readdirSync(path.join(d, 'examples')).sort()).toEqual(['epoch-0001', 'epoch-0002', 'epoch-0003']);
    const rows = await duck(
      `select typeof(epoch) as t, epoch, count(*) as n from read_parquet(${lit(path.join(d, 'examples', '*', '*.parquet'))}) group by all order by epoch`,
    );
    expect(rows).toEqual([1, 2, 3].map((epoch) => ({ t: 'INTEGER', epoch, n: 40 * 2 })));
  });

  test('exampleEpochOf reads both folder names, and nothing else', () => {
    expect([exampleEpochOf('epoch-0012'), exampleEpochOf('epoch=0012'), exampleEpochOf(exampleEpochName(7))]).toEqual([12, 12, 7]);
    expect([exampleEpochOf('epoch_0012'), exampleEpochOf('.epoch-0012'), exampleEpochOf('epoch-')]).toEqual([null, null, null]);
  });
});
