import { readParquetTable } from '../logs/parquet-writer';
import { RunFolder } from '../store/run-folder';

/**
 * Adversarial data maps (Swayamdipta et al. 2020, on adversarial examples) and forgetting counts
 * (Toneva et al. 2019), aggregated from a run's `examples` table at report time.
 *
 * The same aggregates are the DuckDB queries `data_map`, `data_map_binned`, `forgetting_histogram`
 * and `data_map_last_epoch` in docs/queries.md (DuckDB is a devDependency, so the report computes
 * them here; test/report/data-map.test.ts checks both agree on a real run). Rows: phase 'eval' (the
 * eval-mode pass over the training set) of the training split (a missing `split` column counts as
 * train). Probabilities and correctness are with respect to `label_used`.
 *
 * Memory is O(examples), time one pass over the eval files: a 200-epoch × 50,000-example run is
 * reduced to at most DATA_MAP_BINS² cells per view and outcome, whatever its size.
 */

/** Per example, over the epochs it was observed in. */
export interface ExampleDynamics {
  readonly example: number;
  readonly is_noisy: boolean;
  /** mean and population standard deviation of p(label_used) under attack */
  readonly confidence_adv: number;
  readonly variability_adv: number;
  /** the same on the clean input */
  readonly confidence_clean: number;
  readonly variability_clean: number;
  /** correct → wrong transitions between consecutive observations, clean and under attack */
  readonly forgetting_events: number;
  readonly robust_forgetting_events: number;
  /** correctness at the example's last observation */
  readonly final_correct_clean: boolean;
  readonly final_correct_adv: boolean;
}

export type Outcome = 'noisy · memorized' | 'noisy · not memorized' | 'clean · forgotten' | 'clean · never forgotten';
export const OUTCOMES: readonly Outcome[] = ['noisy · memorized', 'noisy · not memorized', 'clean · forgotten', 'clean · never forgotten'];

/**
 * Memorized: a noisy-labelled example fit under attack at its last observation (the wrong label
 * learned robustly). Forgotten: a clean-labelled example with at least one robust forgetting event.
 */
export function outcomeOf(d: ExampleDynamics): Outcome {
  if (d.is_noisy) return d.final_correct_adv ? 'noisy · memorized' : 'noisy · not memorized';
  return d.robust_forgetting_events > 0 ? 'clean · forgotten' : 'clean · never forgotten';
}

/** Bins per axis: confidence over [0, 1], variability over [0, 0.5] (the largest std of a [0, 1] value). */
export const DATA_MAP_BINS = 20;

export interface DataMapCell {
  readonly view: 'adversarial' | 'clean';
  readonly outcome: Outcome;
  /** bin index 0…DATA_MAP_BINS-1 and its centre */
  readonly confidence_bin: number;
  readonly variability_bin: number;
  readonly confidence: number;
  readonly variability: number;
  readonly examples: number;
}

export interface ForgettingBar {
  readonly kind: 'clean' | 'adversarial';
  readonly events: number;
  readonly is_noisy: boolean;
  readonly examples: number;
}

export interface LastEpochConfidence {
  readonly is_noisy: boolean;
  readonly examples: number;
  readonly p_label_adv: number;
  readonly p_label_clean: number;
}

export interface DataMap {
  /** Which phase's rows were used: 'eval', or 'train' when the run logged no eval pass. */
  readonly phase: 'eval' | 'train';
  readonly epochs: number;
  readonly lastEpoch: number;
  readonly examples: number;
  readonly cells: DataMapCell[];
  readonly forgetting: ForgettingBar[];
  readonly lastEpochConfidence: LastEpochConfidence[];
}

const COLUMNS = ['epoch', 'example', 'is_noisy', 'p_label_adv', 'p_label_clean', 'correct_clean', 'correct_adv'];

/**
 * The example files of one phase, in epoch order (examples/epoch-NNNN/part-<phase>[-k].parquet; the
 * `epoch=NNNN` folders of run folders written by earlier versions too).
 */
export function exampleFiles(runDir: string, phase: 'eval' | 'train'): string[] {
  const folder = new RunFolder(runDir);
  return folder.exampleEpochs().flatMap((e) => folder.exampleParts(e, phase));
}

interface Acc {
  noisy: boolean;
  n: number;
  // Welford mean / M2 for p under attack and clean
  ma: number;
  sa: number;
  mc: number;
  sc: number;
  prevClean: number;
  prevAdv: number;
  lastEpoch: number;
  forget: number;
  forgetAdv: number;
}

/** Per-example dynamics in one pass over the run's example files; null when it logged none. */
export function exampleDynamics(runDir: string): {
  phase: 'eval' | 'train';
  rows: ExampleDynamics[];
  epochs: number;
  lastEpoch: number;
  last: Map<number, { noisy: boolean; pa: number; pc: number }>;
} | null {
  let phase: 'eval' | 'train' = 'eval';
  let files = exampleFiles(runDir, 'eval');
  if (files.length === 0) {
    phase = 'train';
    files = exampleFiles(runDir, 'train');
  }
  if (files.length === 0) return null;
  const acc = new Map<number, Acc>();
  const epochs = new Set<number>();
  let lastEpoch = -Infinity;
  let last = new Map<number, { noisy: boolean; pa: number; pc: number }>();
  for (const file of files) {
    const t = readParquetTable(file);
    const cols = COLUMNS.map((name) => t.getChild(name));
    if (cols.some((c) => c === null)) continue; // not an examples file (no such column): skip it
    // whole columns as (typed) arrays: a Vector.get(i) per row dominated the report's time on long runs
    const [ep, ex, noisy, pa, pc, cc, ca] = cols.map((c) => c!.toArray()) as [
      ArrayLike<number>,
      ArrayLike<number>,
      ArrayLike<boolean>,
      ArrayLike<number>,
      ArrayLike<number>,
      ArrayLike<boolean>,
      ArrayLike<boolean>,
    ];
    // a null probability reads as 0 from the typed array: keep it missing (NaN) instead
    const probability = (c: (typeof cols)[number], values: ArrayLike<number>) =>
      c!.nullCount > 0 ? (i: number) => (c!.isValid(i) ? values[i] : NaN) : (i: number) => values[i];
    const pAdv = probability(cols[3], pa);
    const pClean = probability(cols[4], pc);
    const split = t.getChild('split')?.toArray() as ArrayLike<string | null> | undefined;
    for (let i = 0; i < t.numRows; i++) {
      if (split && split[i] !== null && split[i] !== undefined && split[i] !== 'train') continue;
      const epoch = ep[i];
      const e = ex[i];
      const a = pAdv(i);
      const c = pClean(i);
      const okC = cc[i] ? 1 : 0;
      const okA = ca[i] ? 1 : 0;
      let s = acc.get(e);
      if (!s) {
        s = {
          noisy: Boolean(noisy[i]),
          n: 0,
          ma: 0,
          sa: 0,
          mc: 0,
          sc: 0,
          prevClean: -1,
          prevAdv: -1,
          lastEpoch: -Infinity,
          forget: 0,
          forgetAdv: 0,
        };
        acc.set(e, s);
      }
      s.n++;
      const da = a - s.ma;
      s.ma += da / s.n;
      s.sa += da * (a - s.ma);
      const dc = c - s.mc;
      s.mc += dc / s.n;
      s.sc += dc * (c - s.mc);
      if (s.prevClean === 1 && okC === 0) s.forget++;
      if (s.prevAdv === 1 && okA === 0) s.forgetAdv++;
      s.prevClean = okC;
      s.prevAdv = okA;
      s.lastEpoch = epoch;
      epochs.add(epoch);
      if (epoch > lastEpoch) {
        lastEpoch = epoch;
        last = new Map();
      }
      if (epoch === lastEpoch) last.set(e, { noisy: s.noisy, pa: a, pc: c });
    }
  }
  const rows: ExampleDynamics[] = [...acc.entries()]
    .sort((x, y) => x[0] - y[0])
    .map(([example, s]) => ({
      example,
      is_noisy: s.noisy,
      confidence_adv: s.ma,
      variability_adv: Math.sqrt(s.sa / s.n),
      confidence_clean: s.mc,
      variability_clean: Math.sqrt(s.sc / s.n),
      forgetting_events: s.forget,
      robust_forgetting_events: s.forgetAdv,
      final_correct_clean: s.prevClean === 1,
      final_correct_adv: s.prevAdv === 1,
    }));
  return { phase, rows, epochs: epochs.size, lastEpoch, last };
}

/** Bin index of v over [0, hi) in DATA_MAP_BINS bins; the top edge goes to the last bin. */
export function binOf(v: number, hi: number): number {
  return Math.min(DATA_MAP_BINS - 1, Math.max(0, Math.floor((v / hi) * DATA_MAP_BINS)));
}

/** The report's data map of a run folder: binned cells, forgetting histogram, last-epoch confidence. */
export function computeDataMap(runDir: string): DataMap | null {
  const d = exampleDynamics(runDir);
  if (!d) return null;
  const cells = new Map<string, DataMapCell & { examples: number }>();
  const add = (view: DataMapCell['view'], outcome: Outcome, conf: number, vari: number) => {
    if (!Number.isFinite(conf) || !Number.isFinite(vari)) return;
    const cb = binOf(conf, 1);
    const vb = binOf(vari, 0.5);
    const key = `${view}|${outcome}|${cb}|${vb}`;
    const cell = cells.get(key);
    if (cell) (cell as { examples: number }).examples++;
    else
      cells.set(key, {
        view,
        outcome,
        confidence_bin: cb,
        variability_bin: vb,
        confidence: (cb + 0.5) / DATA_MAP_BINS,
        variability: ((vb + 0.5) * 0.5) / DATA_MAP_BINS,
        examples: 1,
      });
  };
  const hist = new Map<string, ForgettingBar & { examples: number }>();
  const bar = (kind: ForgettingBar['kind'], events: number, noisy: boolean) => {
    const key = `${kind}|${events}|${noisy}`;
    const b = hist.get(key);
    if (b) (b as { examples: number }).examples++;
    else hist.set(key, { kind, events, is_noisy: noisy, examples: 1 });
  };
  for (const r of d.rows) {
    const o = outcomeOf(r);
    add('adversarial', o, r.confidence_adv, r.variability_adv);
    add('clean', o, r.confidence_clean, r.variability_clean);
    bar('clean', r.forgetting_events, r.is_noisy);
    bar('adversarial', r.robust_forgetting_events, r.is_noisy);
  }
  const lastEpochConfidence: LastEpochConfidence[] = [];
  for (const noisy of [false, true]) {
    const xs = [...d.last.values()].filter((x) => x.noisy === noisy);
    if (xs.length === 0) continue;
    const mean = (f: (x: (typeof xs)[number]) => number) => xs.reduce((s, x) => s + f(x), 0) / xs.length;
    lastEpochConfidence.push({ is_noisy: noisy, examples: xs.length, p_label_adv: mean((x) => x.pa), p_label_clean: mean((x) => x.pc) });
  }
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    phase: d.phase,
    epochs: d.epochs,
    lastEpoch: d.lastEpoch,
    examples: d.rows.length,
    cells: [...cells.values()].sort(
      (a, b) =>
        order(a.view, b.view) ||
        OUTCOMES.indexOf(a.outcome) - OUTCOMES.indexOf(b.outcome) ||
        a.confidence_bin - b.confidence_bin ||
        a.variability_bin - b.variability_bin,
    ),
    forgetting: [...hist.values()].sort((a, b) => order(a.kind, b.kind) || a.events - b.events || Number(a.is_noisy) - Number(b.is_noisy)),
    lastEpochConfidence,
  };
}
