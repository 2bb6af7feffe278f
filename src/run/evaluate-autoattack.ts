import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import type { ApgdNorm } from '../algorithms/attacks/apgd';
import type { ThreatModel } from '../evaluation/threat-model';
import {
  autoAttackSteps,
  resolveAutoAttack,
  type AutoAttackBudget,
  type AutoAttackStage,
  type StageOutcome,
} from '../evaluation/autoattack';
import type { EvalProgress } from '../core/run-event';
import type { ColumnDef, ColumnValues } from '../logs/columns';
import { ParquetStreamWriter } from '../logs/parquet-writer';
import { autoAttackChecks } from '../evaluation/autoattack-checks';
import { writeFileDurable } from '../core/durable-file';
import { EVAL_FILES } from '../store/run-folder';

/**
 * A resumable AutoAttack evaluation of one checkpoint, written to a folder (eval/<name>/):
 *   state.jsonl        a header line, then one line per finished batch (fsynced): what a resume reads,
 *                      as AutoAttack's state.py keeps its robust flags; a line cut by a kill is ignored
 *   robustness.parquet one row per example (written at the end, atomically)
 *   summary.json       robust accuracy after each stage and under the ensemble, the protocol, warnings
 * Batches are attacked one after the other through every stage (each stage on the examples still
 * robust), with randomness from deriveSeed(seed, 'autoattack', first example), so a resumed evaluation
 * writes the same table as an uninterrupted one.
 */
export interface AutoAttackEvalOptions {
  /** The ball (norm, ε): the run's threat model, or the one `atflow eval` built from its flags. */
  readonly threat: ThreatModel;
  readonly attacks: 'standard' | 'rand' | readonly string[];
  readonly budget?: Partial<AutoAttackBudget>;
  readonly batchSize: number;
  readonly seed: number;
  /** Written into every row and the summary: which weights were attacked (e.g. 'best (epoch 7)'). */
  readonly checkpoint: string;
  readonly split: 'test' | 'train';
  /** Continue from state.jsonl if it exists (else start over). */
  readonly resume: boolean;
  /** Called when each stage of each batch starts and ends (progress display); a promise is awaited before the stage runs on. */
  readonly onProgress?: (p: EvalProgress) => void | Promise<void>;
  /** `what` of the progress events (default 'autoattack'). */
  readonly progressLabel?: string;
}

/** Seconds and points attacked by one stage, over all batches. */
export interface StageTime {
  readonly seconds: number;
  readonly attacked: number;
}

export interface AutoAttackEvalData {
  /** Floats in [0, 1], NHWC, example after example. */
  readonly x: Float32Array;
  readonly labels: Int32Array;
  /** Index of each example in its split (the `example` column; joins to the run's per-example tables). */
  readonly index: Int32Array;
}

export interface AutoAttackSummary {
  readonly checkpoint: string;
  readonly split: string;
  readonly n: number;
  readonly eps: number;
  readonly norm: ApgdNorm;
  readonly attacks: AutoAttackStage[];
  readonly budget: AutoAttackBudget;
  readonly clean_acc: number;
  /** Robust accuracy after each stage (cumulative: the ensemble up to that stage). */
  readonly robust_acc_after: Record<string, number>;
  readonly robust_acc: number;
  readonly warnings: string[];
  /** Wall time of the evaluation (with --resume: this session plus the finished batches' recorded times). */
  readonly seconds: number;
  /** Per stage: its seconds and the points it attacked, summed over batches. */
  readonly stage_time: Record<string, StageTime>;
  /**
   * The rest of `seconds`: the clean forward passes, AutoAttack's checks on the first batch, and
   * bookkeeping (data to tensors, state file, table, summary). Σ stage_time[·].seconds + Σ other_time = seconds.
   */
  readonly other_time: { readonly clean: number; readonly checks: number; readonly bookkeeping: number };
}

interface BatchLine {
  start: number;
  end: number;
  clean_pred: number[];
  clean_margin: (number | null)[];
  stages: Record<string, { robust: number[]; predicted: number[]; margin: (number | null)[]; seconds?: number; attacked?: number }>;
  /** Seconds of the clean pass (absent in files written before per-stage timing). */
  clean_seconds?: number;
}

const nullIfNaN = (v: number) => (Number.isFinite(v) ? v : null);

function appendLine(fd: number, line: string): void {
  fs.writeSync(fd, line + '\n');
  fs.fsyncSync(fd);
}

/** What an evaluation's state.jsonl starts with: every setting its results depend on. */
export function autoAttackHeader(options: AutoAttackEvalOptions, numClasses: number, n: number): Record<string, unknown> {
  const { stages, budget } = resolveAutoAttack({ threat: options.threat, attacks: options.attacks, budget: options.budget }, numClasses);
  const { eps, norm } = options.threat;
  return {
    eps,
    norm,
    attacks: stages,
    budget,
    n,
    batchSize: Math.max(1, options.batchSize),
    seed: options.seed,
    checkpoint: options.checkpoint,
    split: options.split,
  };
}

/** The header of an evaluation folder's state.jsonl; undefined without one, null when unreadable. */
export function readStateHeader(outDir: string): Record<string, unknown> | null | undefined {
  const file = path.join(outDir, EVAL_FILES.state);
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Reads a state file; returns the finished batches if its header matches `header`, else throws. */
function readState(file: string, header: Record<string, unknown>): BatchLine[] {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let stored: unknown;
  try {
    stored = JSON.parse(lines[0]);
  } catch {
    throw new AtflowError('RESUME', `${file}: the header line is unreadable; remove the file (or the eval folder) to start over`, { file });
  }
  if (JSON.stringify(stored) !== JSON.stringify(header)) {
    throw new AtflowError(
      'RESUME',
      `${file}: was written by an evaluation with other settings ` +
        `(${JSON.stringify(stored)}), not ${JSON.stringify(header)}; use ` +
        `another --name or drop --resume to start over`,
      { file },
    );
  }
  const out: BatchLine[] = [];
  for (const l of lines.slice(1)) {
    if (!l.trim()) continue;
    try {
      out.push(JSON.parse(l) as BatchLine);
    } catch {
      break; // a line cut by a kill: that batch is attacked again
    }
  }
  return out;
}

export async function evaluateAutoAttack(
  model: Model,
  data: AutoAttackEvalData,
  outDir: string,
  options: AutoAttackEvalOptions,
): Promise<AutoAttackSummary> {
  const t0 = performance.now();
  const { stages, budget } = resolveAutoAttack(
    { threat: options.threat, attacks: options.attacks, budget: options.budget },
    model.numClasses,
  );
  const { eps, norm } = options.threat;
  const [H, W, C] = model.inputShape;
  const size = H * W * C;
  const n = data.labels.length;
  if (data.x.length !== n * size)
    throw new AtflowError('SHAPE', `evaluateAutoAttack: x has ${data.x.length} values, expected ${n}×${H}×${W}×${C}`);
  const bs = Math.max(1, options.batchSize);
  fs.mkdirSync(outDir, { recursive: true });
  const stateFile = path.join(outDir, EVAL_FILES.state);
  const header = autoAttackHeader(options, model.numClasses, n);
  const done: BatchLine[] = options.resume && fs.existsSync(stateFile) ? readState(stateFile, header) : [];
  // the batches an earlier session finished count with their recorded times
  const resumedSeconds = done.reduce(
    (a, l) => a + (l.clean_seconds ?? 0) + Object.values(l.stages).reduce((p, st) => p + (st.seconds ?? 0), 0),
    0,
  );
  if (done.length === 0) writeFileDurable(stateFile, JSON.stringify(header) + '\n', { mkdir: true });
  else {
    // drop a partial last line so that appends start on a fresh line
    const keep = [JSON.stringify(header), ...done.map((d) => JSON.stringify(d))].join('\n') + '\n';
    writeFileDurable(stateFile, keep, { mkdir: true });
  }

  // AutoAttack's own checks on the first batch (warnings, never errors)
  const firstEnd = Math.min(n, bs);
  const tChecks = performance.now();
  const warnings = tf.tidy(() =>
    autoAttackChecks(
      model,
      tf.tensor4d(data.x.subarray(0, firstEnd * size), [firstEnd, H, W, C]),
      tf.tensor1d(data.labels.subarray(0, firstEnd), 'int32'),
      options.attacks === 'rand',
    ),
  );
  const checksSeconds = (performance.now() - tChecks) / 1000;

  const batches = Math.ceil(n / bs);
  // robust counts after each stage over the finished batches, for the progress display
  const robustSoFar = new Map<string, number>(
    stages.map((s) => [s, done.reduce((a, l) => a + l.stages[s].robust.reduce((p, v) => p + v, 0), 0)]),
  );
  const fd = fs.openSync(stateFile, 'a');
  try {
    for (let b = done.length; b < batches; b++) {
      const start = b * bs;
      const end = Math.min(n, start + bs);
      const x = tf.tensor4d(data.x.subarray(start * size, end * size), [end - start, H, W, C]);
      const y = tf.tensor1d(data.labels.subarray(start, end), 'int32');
      try {
        const steps = autoAttackSteps(model, x, y, deriveSeed(options.seed, 'autoattack', start), {
          threat: options.threat,
          attacks: stages,
          budget,
        });
        let step = steps.next();
        for (; !step.done; step = steps.next()) {
          const e = step.value;
          await options.onProgress?.({
            what: options.progressLabel ?? 'autoattack',
            step: e.stage,
            stepIndex: e.index,
            steps: stages.length,
            batch: b,
            batches,
            phase: e.phase,
            attacked: e.attacked,
            stepSeconds: e.seconds,
            elapsed: (performance.now() - t0) / 1000,
            robustAcc: e.phase === 'end' ? ((robustSoFar.get(e.stage) ?? 0) + e.robust) / end : NaN,
          });
        }
        const r = step.value;
        for (const o of r.stages) robustSoFar.set(o.stage, (robustSoFar.get(o.stage) ?? 0) + o.robust.reduce((p, v) => p + v, 0));
        const line: BatchLine = {
          start,
          end,
          clean_pred: Array.from(r.cleanPredicted),
          clean_margin: Array.from(r.cleanMargin, nullIfNaN),
          stages: Object.fromEntries(
            r.stages.map((s: StageOutcome) => [
              s.stage,
              {
                robust: Array.from(s.robust),
                predicted: Array.from(s.predicted),
                margin: Array.from(s.margin, nullIfNaN),
                seconds: s.seconds,
                attacked: s.attacked,
              },
            ]),
          ),
          clean_seconds: r.cleanSeconds,
        };
        appendLine(fd, JSON.stringify(line));
        done.push(line);
      } finally {
        tf.dispose([x, y]);
      }
    }
  } finally {
    fs.closeSync(fd);
  }

  // the table
  const col = (name: string) => name.replace(/-/g, '_');
  const defs: ColumnDef[] = [
    { name: 'example', type: 'int32' },
    { name: 'label', type: 'int32' },
    { name: 'clean_pred', type: 'int32' },
    { name: 'clean_correct', type: 'bool' },
    { name: 'clean_margin', type: 'float32', nullable: true },
  ];
  for (const s of stages)
    defs.push(
      { name: `${col(s)}_robust`, type: 'bool' },
      { name: `${col(s)}_pred`, type: 'int32' },
      { name: `${col(s)}_margin`, type: 'float32', nullable: true },
    );
  defs.push(
    { name: 'robust', type: 'bool' },
    { name: 'eps', type: 'float64' },
    { name: 'norm', type: 'utf8' },
    { name: 'checkpoint', type: 'utf8' },
    { name: 'split', type: 'utf8' },
  );
  const cols: Record<string, ColumnValues> = {
    example: data.index,
    label: data.labels,
    clean_pred: new Int32Array(n),
    clean_correct: new Uint8Array(n),
    clean_margin: new Float32Array(n),
    robust: new Uint8Array(n),
  };
  for (const s of stages) {
    cols[`${col(s)}_robust`] = new Uint8Array(n);
    cols[`${col(s)}_pred`] = new Int32Array(n);
    cols[`${col(s)}_margin`] = new Float32Array(n);
  }
  for (const line of done) {
    for (let i = line.start; i < line.end; i++) {
      const j = i - line.start;
      (cols.clean_pred as Int32Array)[i] = line.clean_pred[j];
      (cols.clean_correct as Uint8Array)[i] = line.clean_pred[j] === data.labels[i] ? 1 : 0;
      (cols.clean_margin as Float32Array)[i] = line.clean_margin[j] ?? NaN;
      let robust = line.clean_pred[j] === data.labels[i] ? 1 : 0;
      for (const s of stages) {
        const st = line.stages[s];
        (cols[`${col(s)}_robust`] as Uint8Array)[i] = st.robust[j];
        (cols[`${col(s)}_pred`] as Int32Array)[i] = st.predicted[j];
        (cols[`${col(s)}_margin`] as Float32Array)[i] = st.margin[j] ?? NaN;
        robust = st.robust[j];
      }
      (cols.robust as Uint8Array)[i] = robust;
    }
  }
  const metadata = { 'atflow.autoattack': JSON.stringify(header) };
  const writer = await ParquetStreamWriter.open(path.join(outDir, EVAL_FILES.robustness), defs, { metadata });
  await writer.append({ ...cols, eps, norm, checkpoint: options.checkpoint, split: options.split }, n);
  await writer.close();

  const mean = (a: Uint8Array) => (n === 0 ? 0 : a.reduce((s, v) => s + v, 0) / n);
  const after: Record<string, number> = {};
  for (const s of stages) after[s] = mean(cols[`${col(s)}_robust`] as Uint8Array);
  // AutoAttack's check_square_sr: Square should not find much that the white-box attacks missed
  if (stages.includes('square') && stages.length > 1) {
    const before = after[stages[stages.indexOf('square') - 1]] ?? mean(cols.clean_correct as Uint8Array);
    if (after.square < before - 0.002) {
      warnings.push(
        `Square (black-box) lowered the robust accuracy by ${((before - after.square) * 100).toFixed(2)} ` +
          `points after the gradient attacks: the gradient-based evaluation may ` +
          `be unreliable (gradient masking); consider more Square ` +
          `queries/restarts or an adaptive attack`,
      );
    }
  }
  const stageTime: Record<string, StageTime> = {};
  for (const st of stages) {
    stageTime[st] = {
      seconds: done.reduce((a, l) => a + (l.stages[st].seconds ?? 0), 0),
      attacked: done.reduce((a, l) => a + (l.stages[st].attacked ?? l.stages[st].predicted.filter((p) => p >= 0).length), 0),
    };
  }
  const seconds = resumedSeconds + (performance.now() - t0) / 1000;
  const clean = done.reduce((a, l) => a + (l.clean_seconds ?? 0), 0);
  const staged = Object.values(stageTime).reduce((a, t) => a + t.seconds, 0);
  const summary: AutoAttackSummary = {
    checkpoint: options.checkpoint,
    split: options.split,
    n,
    eps,
    norm,
    attacks: stages,
    budget,
    clean_acc: mean(cols.clean_correct as Uint8Array),
    robust_acc_after: after,
    robust_acc: mean(cols.robust as Uint8Array),
    warnings,
    seconds,
    stage_time: stageTime,
    other_time: { clean, checks: checksSeconds, bookkeeping: seconds - staged - clean - checksSeconds },
  };
  writeFileDurable(path.join(outDir, EVAL_FILES.summary), JSON.stringify(summary, null, 2) + '\n', { mkdir: true });
  return summary;
}
