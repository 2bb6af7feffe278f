import * as fs from 'fs';
import * as path from 'path';
import type { OperatorFunction } from 'rxjs';
import { sinkOperator, type RunSinkWithResult } from '../core/run-sink';
import type { EpochRecord } from '../core/records';
import type { RunEvent, RunEventOf } from '../core/run-event';
import type { BackendInfo } from '../core/backend-info';
import { AtflowError } from '../core/errors';
import { readRunMeta, type RunMeta } from './run-meta';
import type { EvalProtocol } from '../core/eval-protocol';
import { writeFileDurable } from '../core/durable-file';
import { RUN_FILES, RunFolder } from '../store/run-folder';
import { bestEpochOf, type SelectOn } from '../analysis/best-epoch';

/** Accuracies of one epoch, fractions in [0, 1]; train accuracies are against the labels trained on. */
export interface EpochAccuracies {
  readonly epoch: number;
  readonly test_clean_acc: number;
  readonly test_robust_acc: number;
  readonly train_clean_acc: number;
  readonly train_robust_acc: number;
}

export interface RunSummary {
  readonly run_id: string;
  readonly status: 'completed' | 'interrupted' | 'failed' | 'incomplete';
  readonly trainer: string;
  readonly te: boolean;
  readonly label_noise: RunMeta['label_noise'];
  /** Realised noise rate of the labels event (null if none was logged). */
  readonly label_noise_realised: number | null;
  /** The training attack. */
  readonly attack: RunMeta['attack'];
  /** The per-epoch evaluation attack and its sizes (null when the run-start event did not carry it). */
  readonly eval_protocol: EvalProtocol | null;
  readonly seed: number | null;
  readonly epochs: number;
  /** Best epoch by the run's own rule (the last epoch record's best_epoch / best_rule). */
  readonly best: EpochAccuracies | null;
  readonly best_rule: string | null;
  readonly final: EpochAccuracies | null;
  /**
   * Set when the run's last epoch is not its last planned one: "stopped at epoch 65 of 80". `reason`
   * 'interrupted' (Ctrl-C: `final` is where it stopped, not a final epoch; --resume continues it),
   * 'early' (an early-stopping rule completed it there), or the status of a run that failed or never ended.
   */
  readonly stopped: RunStop | null;
  /** best.test_robust_acc − final.test_robust_acc: how much robust overfitting cost. */
  readonly robust_gap: number | null;
  readonly backend: BackendInfo | null;
  readonly started_at: string | null;
  readonly wall_ms: number | null;
  /**
   * Share of the epochs' wall time spent in the per-epoch evaluation (test, val, training set): Σ eval_ms /
   * Σ wall_ms over the run's epochs, those before a resume included (null before the first). `eval.train`
   * over a full training set can double a run's cost; `eval.trainSubset` bounds it.
   */
  readonly eval_share: number | null;
  /** The run's warning events (settings that do nothing, failed sanity checks), in order. */
  readonly warnings: readonly string[];
  /** Paths, relative to the run folder, of every table and file present when the summary was written. */
  readonly paths: Readonly<Record<string, string>>;
  readonly error?: string;
}

/** Where a run stopped short of its planned epochs, and why. */
export interface RunStop {
  readonly epoch: number;
  readonly of: number;
  readonly reason: 'early' | 'interrupted' | 'failed' | 'incomplete';
}

/** "stopped at epoch 65 of 80" / "stopped early at epoch 7 of 12" (the table, the report). */
export function describeStop(s: RunStop): string {
  return (
    `stopped ${s.reason === 'early' ? 'early ' : ''}at epoch ${s.epoch} of ` +
    `${s.of}${s.reason === 'early' || s.reason === 'interrupted' ? '' : ` (${s.reason})`}`
  );
}

/** The eval.selectOn a run-start's spec names ('test' when it names none). */
function selectOnOf(spec: unknown): SelectOn {
  const v = (spec as { eval?: { selectOn?: unknown } } | null)?.eval?.selectOn;
  return v === 'val' ? 'val' : 'test';
}

const accuracies = (r: EpochRecord): EpochAccuracies => ({
  epoch: r.epoch,
  test_clean_acc: r.test_clean_acc,
  test_robust_acc: r.test_robust_acc,
  train_clean_acc: r.train_clean_acc,
  train_robust_acc: r.train_robust_acc,
});

/** The run folder's files that exist, by name (tables, spec, checkpoints, arrow streams, report). */
export function runPaths(runDir: string): Record<string, string> {
  const folder = new RunFolder(runDir);
  const out: Record<string, string> = {};
  const rel = (p: string) => path.relative(runDir, p).split(path.sep).join('/');
  for (const t of ['labels', 'events', 'epochs', 'steps', 'complexity'] as const)
    if (fs.existsSync(folder.tableFile(t))) out[t] = rel(folder.tableFile(t));
  if (fs.existsSync(folder.file('gradientProbe'))) out.gradient_probe = rel(folder.file('gradientProbe'));
  // the folder: pandas', pyarrow's and polars' read_parquet(dir) read it as one table (docs/queries.md)
  if (fs.existsSync(folder.examplesDir)) out.examples = `${rel(folder.examplesDir)}/`;
  for (const f of ['spec', 'report', 'success'] as const)
    if (fs.existsSync(folder.file(f))) out[f === 'success' ? '_SUCCESS' : f] = rel(folder.file(f));
  if (fs.existsSync(folder.checkpointsDir)) out.checkpoints = `${rel(folder.checkpointsDir)}/`;
  if (fs.existsSync(folder.arrowDir()))
    for (const f of fs.readdirSync(folder.arrowDir()))
      if (f.endsWith('.arrows')) out[`arrow_${f.replace('.arrows', '')}`] = rel(path.join(folder.arrowDir(), f));
  return out;
}

/** Builds a run's summary from its events (pure; `paths` is filled by the writer). */
export class RunSummaryBuilder {
  private start: RunEventOf<'run-start'> | null = null;
  private readonly records: EpochRecord[] = [];
  private noise: number | null = null;
  private readonly warnings: string[] = [];
  private end: RunEventOf<'run-end'> | null = null;

  observe(ev: RunEvent): void {
    if (ev.type === 'run-start') {
      this.start = ev;
      // a resumed run: the epochs before it come with run-start, so epochs/best/final/eval_share cover the whole run
      this.records.splice(0, this.records.length, ...ev.priorEpochs);
    } else if (ev.type === 'labels') this.noise = ev.noiseRate;
    else if (ev.type === 'epoch-end') this.records.push(ev.record);
    else if (ev.type === 'warning') this.warnings.push(ev.epoch > 0 ? `epoch ${ev.epoch}: ${ev.message}` : ev.message);
    else if (ev.type === 'run-end') this.end = ev;
  }

  get runDir(): string | null {
    return this.start?.runDir ?? null;
  }

  build(paths: Record<string, string> = {}): RunSummary {
    const meta = readRunMeta(this.start?.spec);
    const last = this.records.length ? this.records[this.records.length - 1] : null;
    // the run's own decision (trackBest's best_epoch), else the same rule on the run's selection split
    const bestRec = last
      ? (this.records.find((r) => r.epoch === last.best_epoch) ?? pickBest(this.records, selectOnOf(this.start?.spec)))
      : null;
    const best = bestRec ? accuracies(bestRec) : null;
    const final = last ? accuracies(last) : null;
    const status = this.end?.status ?? 'incomplete';
    const planned = this.start?.epochs ?? 0;
    const stopped: RunStop | null =
      last && last.epoch < planned ? { epoch: last.epoch, of: planned, reason: status === 'completed' ? 'early' : status } : null;
    return {
      run_id: this.start?.runId ?? '',
      status,
      trainer: meta.trainer,
      te: meta.te,
      label_noise: meta.label_noise,
      label_noise_realised: this.noise,
      attack: meta.attack,
      eval_protocol: this.start?.evaluation ?? null,
      seed: this.start?.seed ?? null,
      epochs: this.records.length,
      best,
      best_rule: last ? last.best_rule : null,
      final,
      stopped,
      robust_gap: best && final ? best.test_robust_acc - final.test_robust_acc : null,
      backend: this.start?.backend ?? null,
      started_at: this.start?.startedAt ?? null,
      wall_ms: this.end?.wallMs ?? null,
      eval_share: evalShare(this.records),
      warnings: [...this.warnings],
      paths,
      ...(this.end?.error ? { error: this.end.error } : {}),
    };
  }
}

/** Σ eval_ms / Σ wall_ms over epoch records (null without records or wall time). */
export function evalShare(records: readonly EpochRecord[]): number | null {
  let evalMs = 0;
  let wallMs = 0;
  for (const r of records) {
    if (!Number.isFinite(r.eval_ms) || !Number.isFinite(r.wall_ms)) continue;
    evalMs += r.eval_ms;
    wallMs += r.wall_ms;
  }
  return wallMs > 0 ? evalMs / wallMs : null;
}

/** The best epoch's record by the one best-epoch rule (analysis/best-epoch.ts) on `selectOn`; null when none was evaluated. */
export function pickBest(records: readonly EpochRecord[], selectOn: SelectOn = 'test'): EpochRecord | null {
  const epoch = bestEpochOf(records, selectOn);
  return records.find((r) => r.epoch === epoch) ?? null;
}

/** Writes `<runDir>/summary.json` atomically; returns its path. */
export function writeRunSummary(runDir: string, summary: RunSummary): string {
  const file = new RunFolder(runDir).file('summary');
  writeFileDurable(file, JSON.stringify(summary, nullForNaN, 2) + '\n', { mkdir: true });
  return file;
}

/** JSON has no NaN: unknown numbers (e.g. an attack field the spec lacked) become null. */
function nullForNaN(_k: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
}

export function readRunSummary(runDir: string): RunSummary {
  const file = new RunFolder(runDir).file('summary');
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RunSummary;
  } catch (e) {
    throw new AtflowError('DATA_FILE', `cannot read run summary ${file}: ${(e as Error).message}`, { path: file });
  }
}

/** A multi-run command's summary: `{ created_at, runs: [...] }`, runs in the given order. */
export function writeMultiRunSummary(file: string, runs: readonly RunSummary[], extra: Record<string, unknown> = {}): string {
  writeFileDurable(file, JSON.stringify({ created_at: new Date().toISOString(), ...extra, runs }, nullForNaN, 2) + '\n', { mkdir: true });
  return file;
}

/** The summary as an awaited sink object ({ name, handle, close }): writes summary.json at run-end. */
export class SummaryWriter implements RunSinkWithResult<RunSummary> {
  readonly name = 'summary';
  private readonly builder = new RunSummaryBuilder();
  private written: RunSummary | null = null;

  handle(ev: RunEvent): void {
    this.builder.observe(ev);
    if (ev.type === 'run-end') this.flush();
  }

  /** Writes (or rewrites) summary.json now; used at run-end and when the stream ends without one. */
  flush(): RunSummary | null {
    const dir = this.builder.runDir;
    if (!dir) return null;
    const first = this.builder.build(runPaths(dir));
    const summary = { ...first, paths: { ...first.paths, summary: RUN_FILES.summary } };
    writeRunSummary(dir, summary);
    this.written = summary;
    return this.written;
  }

  close(): void {
    if (!this.written) this.flush();
  }

  get summary(): RunSummary | null {
    return this.written;
  }

  result(): RunSummary | null {
    return this.written;
  }
}

/** `events$.pipe(summarySink())`: writes summary.json at run-end and emits the summary on completion. */
export function summarySink(): OperatorFunction<RunEvent, RunSummary> {
  return sinkOperator(() => new SummaryWriter());
}
