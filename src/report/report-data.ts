import * as fs from 'fs';
import * as path from 'path';
import type * as arrow from 'apache-arrow';
import { AtflowError } from '../core/errors';
import type { EvalProtocol } from '../core/eval-protocol';
import { computeDataMap, type DataMap } from './data-map';
import { readParquetTable } from '../logs/parquet-writer';
import { readRunMeta, type RunMeta } from '../logs/run-meta';
import { EVAL_FILES, RunFolder, type RunTable } from '../store/run-folder';

/** What the report reads from one run folder (Parquet via parquet-wasm; spec.json; _SUCCESS). */
export interface ReportRun {
  readonly runId: string;
  /** Short name for legends: the variant when the spec has one, else the run id. */
  readonly label: string;
  readonly dir: string;
  readonly meta: RunMeta;
  /** spec.json's `evaluation`: the per-epoch evaluation protocol (null for older run folders). */
  readonly evaluation: EvalProtocol | null;
  /** The config's epoch count, when spec.json says. */
  readonly plannedEpochs: number | null;
  /** `_SUCCESS` is present: the run ended normally. */
  readonly finished: boolean;
  readonly epochs: Array<Record<string, number | string>>;
  /**
   * epoch → "event|noisy" → count, for every epoch whose observation could show a transition (an empty
   * map: none happened, zero events): each epoch after the first in phase 'train', each evaluated epoch
   * of the training set after the first in phase 'eval'.
   */
  readonly events: Map<number, Map<string, number>>;
  /** Which events `events` counts: the eval pass's (between evaluations) or the training rows' (between presentations). */
  readonly eventsPhase: 'train' | 'eval' | null;
  /** Per epoch: min / max of the per-step squared gradient norm (the epoch mean is in `epochs`). */
  readonly gradNormRange: Array<{ epoch: number; min: number; max: number }>;
  /** measure → [epoch, value][] */
  readonly complexity: Map<string, Array<[number, number]>>;
  /** The gradient-instability probe, if `atflow probe gradient` was run: per probed epoch, [alpha, delta][] */
  readonly probe: Array<{ epoch: number; alpha: number; delta: number }>;
  /** Adversarial data map from `examples` (null when the run logged no per-example rows). */
  readonly dataMap: DataMap | null;
  /** `atflow eval` results found in `<runDir>/eval/<name>/summary.json`, shown as they are (see robustnessEvals). */
  readonly evals: Array<{ name: string; fields: Record<string, string | number | boolean> }>;
}

/**
 * Hook for the AutoAttack join: `atflow eval` (another part of atflow) writes
 * `<runDir>/eval/<name>/summary.json` and `robustness.parquet`. Until its figure exists, the report
 * lists each summary's top-level scalar fields as they are, so its numbers are visible next to the run.
 */
export function robustnessEvals(dir: string): ReportRun['evals'] {
  const folder = new RunFolder(dir);
  const out: ReportRun['evals'] = [];
  for (const name of folder.evalNames()) {
    const file = path.join(folder.evalDir(name), EVAL_FILES.summary);
    if (!fs.existsSync(file)) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new AtflowError('DATA_FILE', `${file} is not valid JSON: ${(e as Error).message}`, { path: file });
    }
    const fields: Record<string, string | number | boolean> = {};
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      for (const [k, v] of Object.entries(raw)) if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') fields[k] = v;
    }
    out.push({ name, fields });
  }
  return out;
}

function rows(t: arrow.Table): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (let i = 0; i < t.numRows; i++) out.push(t.get(i)!.toJSON());
  return out;
}

function optionalTable(dir: string, name: RunTable | 'gradient_probe', columns?: string[]): Array<Record<string, any>> {
  const folder = new RunFolder(dir);
  const file = name === 'gradient_probe' ? folder.file('gradientProbe') : folder.tableFile(name);
  return fs.existsSync(file) ? rows(readParquetTable(file, columns)) : [];
}

export function isRunDir(dir: string): boolean {
  return fs.existsSync(new RunFolder(dir).tableFile('epochs'));
}

export function loadReportRun(dir: string): ReportRun {
  const folder = new RunFolder(dir);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new AtflowError(
      'DATA_FILE',
      `${dir} is not a run folder${fs.existsSync(dir) ? ' (it is a file)' : ' (it does not exist)'}: ` +
        `give a run folder (runs/<run_id>) or a sweep folder`,
      { path: dir },
    );
  }
  if (!isRunDir(dir)) {
    throw new AtflowError(
      'DATA_FILE',
      `${dir} is not a run folder with logs: epochs.parquet is missing ` +
        `(expected spec.json, epochs.parquet, ... as written by the Parquet ` +
        `sink)`,
      { path: dir },
    );
  }
  folder.checkShape();
  let spec: { run_id?: string; epochs?: number; spec?: { variant?: string; epochs?: number }; evaluation?: EvalProtocol } = {};
  try {
    spec = folder.readSpec() as typeof spec;
  } catch {
    // spec.json is optional for the report
  }
  const epochs = optionalTable(dir, 'epochs').sort((a, b) => a.epoch - b.epoch);
  const events = new Map<number, Map<string, number>>();
  // events of one phase only: 'eval' (between evaluations, the same pass as the curves) when the run
  // has them, else 'train' (between presentations); logs from before the phase column count as one
  const eventRows = optionalTable(dir, 'events', ['epoch', 'event', 'is_noisy', 'phase']);
  const eventsPhase: 'train' | 'eval' | null = eventRows.some((r) => r.phase === 'eval')
    ? 'eval'
    : eventRows.some((r) => r.phase === 'train')
      ? 'train'
      : null;
  if (eventsPhase !== null) {
    // the detector compares each observation with the previous one in its phase: train rows come every
    // epoch, eval rows of the training set at the epochs that evaluated it (train_*_acc logged); an
    // epoch without a transition is zero events, not a gap the figure's line would cross
    const observed = epochs.filter(
      (e) => eventsPhase === 'train' || Number.isFinite(e.train_clean_acc ?? NaN) || Number.isFinite(e.train_robust_acc ?? NaN),
    );
    for (const e of observed.slice(1)) events.set(Number(e.epoch), new Map());
  }
  for (const r of eventRows.filter((x) => eventsPhase === null || x.phase === eventsPhase)) {
    const m = events.get(r.epoch) ?? new Map<string, number>();
    const k = `${r.event}|${r.is_noisy ? 'noisy' : 'clean'}`;
    m.set(k, (m.get(k) ?? 0) + 1);
    events.set(r.epoch, m);
  }
  const complexity = new Map<string, Array<[number, number]>>();
  for (const r of optionalTable(dir, 'complexity')) {
    if (r.value === null || !Number.isFinite(r.value)) continue;
    const l = complexity.get(r.measure) ?? [];
    l.push([r.epoch, r.value]);
    complexity.set(r.measure, l);
  }
  // steps are reduced to a per-epoch range here: a long run has ~10⁵ of them
  const range = new Map<number, { min: number; max: number }>();
  for (const s of optionalTable(dir, 'steps', ['epoch', 'grad_norm_sq'])) {
    if (!(s.grad_norm_sq > 0)) continue;
    const r = range.get(s.epoch) ?? { min: Infinity, max: -Infinity };
    r.min = Math.min(r.min, s.grad_norm_sq);
    r.max = Math.max(r.max, s.grad_norm_sq);
    range.set(s.epoch, r);
  }
  const probe = optionalTable(dir, 'gradient_probe')
    .filter((r) => r.alpha > 0 && r.delta > 0)
    .map((r) => ({ epoch: Number(r.epoch), alpha: Number(r.alpha), delta: Number(r.delta) }));
  const runId = spec.run_id ?? path.basename(dir);
  return {
    runId,
    label: spec.spec?.variant ?? runId,
    dir,
    meta: readRunMeta(spec.spec),
    evaluation: spec.evaluation ?? null,
    plannedEpochs: spec.epochs ?? spec.spec?.epochs ?? null,
    finished: folder.state() === 'finished',
    epochs,
    events,
    eventsPhase,
    gradNormRange: [...range.entries()].sort((a, b) => a[0] - b[0]).map(([epoch, r]) => ({ epoch, ...r })),
    complexity,
    probe,
    dataMap: computeDataMap(dir),
    evals: robustnessEvals(dir),
  };
}

/** Legend names: variants where they are unique across the runs shown, run ids otherwise. */
export function withUniqueLabels(runs: readonly ReportRun[]): ReportRun[] {
  const labels = runs.map((r) => r.label);
  const unique = new Set(labels).size === labels.length;
  return runs.map((r) => (unique ? r : { ...r, label: r.runId }));
}
