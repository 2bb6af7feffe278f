import * as fs from 'fs';
import type { EpochRecord } from '../core/records';
import { bestEpochOf } from '../analysis/best-epoch';
import { readParquetTable } from '../logs/parquet-writer';
import { describeStop, evalShare, type RunStop } from '../logs/summary';
import { describeEvalProtocol, type EvalProtocol } from '../core/eval-protocol';
import { RunFolder } from '../store/run-folder';

/** spec.json's `evaluation` (the per-epoch evaluation protocol), null when absent. */
export function readEvalProtocol(runDir: string): EvalProtocol | null {
  try {
    return (new RunFolder(runDir).readSpec() as { evaluation?: EvalProtocol }).evaluation ?? null;
  } catch {
    return null;
  }
}

/** The epochs table of a run folder as records (empty when it has none yet). */
export function readEpochRecords(runDir: string): EpochRecord[] {
  const file = new RunFolder(runDir).tableFile('epochs');
  if (!fs.existsSync(file)) return [];
  const t = readParquetTable(file);
  const out: EpochRecord[] = [];
  for (let i = 0; i < t.numRows; i++) {
    const row = t.get(i)!.toJSON() as Record<string, unknown>;
    out.push(
      Object.fromEntries(
        Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v === null ? NaN : v]),
      ) as unknown as EpochRecord,
    );
  }
  return out.sort((a, b) => a.epoch - b.epoch);
}

const pct = (v: number) => (Number.isFinite(v) ? (100 * v).toFixed(1).padStart(6) : '     -');

/** summary.json's `stopped` (where the run stopped short of its planned epochs), null when absent. */
export function readRunStop(runDir: string): RunStop | null {
  try {
    return (JSON.parse(fs.readFileSync(new RunFolder(runDir).file('summary'), 'utf8')) as { stopped?: RunStop | null }).stopped ?? null;
  } catch {
    return null;
  }
}

/** What final_eval.json holds that the console summary shows (the end-of-training evaluation). */
export interface FinalEvalSummary {
  readonly eps?: number;
  readonly norm?: string;
  readonly autoattack?: { readonly final: FinalAutoAttack; readonly best: FinalAutoAttack | null };
  readonly strong?: { readonly final: FinalStrong; readonly best: FinalStrong | null };
}
interface FinalAutoAttack {
  readonly checkpoint: string;
  readonly n: number;
  readonly eps: number;
  readonly norm: string;
  readonly clean_acc: number;
  readonly robust_acc_after: Readonly<Record<string, number>>;
  readonly robust_acc: number;
  readonly seconds: number;
}
interface FinalStrong {
  readonly checkpoint: string;
  readonly n: number;
  readonly clean_acc: number;
  readonly per_attack: Readonly<Record<string, number>>;
  readonly worst_case_acc: number;
}

/** final_eval.json of a run folder, null when the run has none (or it cannot be read). */
export function readFinalEval(runDir: string): FinalEvalSummary | null {
  try {
    return JSON.parse(fs.readFileSync(new RunFolder(runDir).file('finalEval'), 'utf8')) as FinalEvalSummary;
  } catch {
    return null;
  }
}

/** The end-of-training evaluation's lines: best and final (one line when they are the same weights). */
function finalEvalLines(name: string, f: FinalEvalSummary): string[] {
  const p = (v: number) => `${(100 * v).toFixed(1)} %`;
  const lines: string[] = [];
  const epochOf = (checkpoint: string) => /epoch (\d+)/.exec(checkpoint)?.[1] ?? checkpoint;
  // best is null when no epoch was evaluated: the final weights only
  const pairs = <T extends { checkpoint: string }>(e: { final: T; best: T | null }): [string, T][] =>
    e.best === null
      ? [[`${name} final`, e.final]]
      : epochOf(e.best.checkpoint) === epochOf(e.final.checkpoint)
        ? [[`${name} best = final`, e.final]]
        : [
            [`${name} best`, e.best],
            [`${name} final`, e.final],
          ];
  if (f.autoattack) {
    const a = f.autoattack.final;
    lines.push(`AutoAttack (standard, ${a.norm} ε = ${Number(a.eps.toPrecision(4))}, ${a.n} test examples; final_eval.json):`);
    for (const [label, e] of pairs(f.autoattack)) {
      const stages = Object.entries(e.robust_acc_after)
        .map(([s, v]) => `${s} ${(100 * v).toFixed(1)}`)
        .join(' / ');
      lines.push(
        `  ${label} ${e.checkpoint.replace(/^(best|final) /, '')}: clean ` +
          `${p(e.clean_acc)}, robust ${p(e.robust_acc)} (after ${stages} %), ${e.seconds.toFixed(0)} ` +
          `s`,
      );
    }
  }
  if (f.strong) {
    const s = f.strong.final;
    const ball = f.norm ? `; ${f.norm} ε = ${Number((f.eps ?? NaN).toPrecision(4))}` : '';
    lines.push(`strong evaluation (${Object.keys(s.per_attack).join(', ')}${ball}, ` + `${s.n} test examples; final_eval.json):`);
    for (const [label, e] of pairs(f.strong))
      lines.push(`  ${label} ${e.checkpoint.replace(/^(best|final) /, '')}: clean ${p(e.clean_acc)}, worst case ${p(e.worst_case_acc)}`);
  }
  return lines;
}

/**
 * The end-of-run table: per run, train and test, clean and robust accuracy at the best and the final
 * epoch and best − final (train accuracies are against the labels trained on), then each run's share of
 * epoch time spent evaluating. The best epoch is the run's own decision (its last record's best_epoch,
 * made by the one best-epoch rule on eval.selectOn), as in summary.json. A run `stopped` short of its
 * epochs says so: an interrupted run's last row is labelled "stopped", not "final".
 */
export function renderSummaryTable(
  runs: readonly {
    name: string;
    epochs: readonly EpochRecord[];
    evaluation?: EvalProtocol | null;
    stopped?: RunStop | null;
    finalEval?: FinalEvalSummary | null;
  }[],
): string {
  const lines: string[] = [];
  const head = ['run'.padEnd(24), 'epoch', '  train clean', ' train robust', '   test clean', '  test robust'].join(' ');
  lines.push(head, '-'.repeat(head.length));
  for (const r of runs) {
    const evaluated = r.epochs.filter((e) => Number.isFinite(e.test_robust_acc));
    if (evaluated.length === 0) continue;
    const decided = r.epochs[r.epochs.length - 1].best_epoch;
    const best = evaluated.find((e) => e.epoch === decided) ?? evaluated.find((e) => e.epoch === bestEpochOf(evaluated))!;
    const final = evaluated[evaluated.length - 1];
    const interrupted = r.stopped && r.stopped.reason !== 'early';
    const row = (label: string, e: EpochRecord | null, diff?: [EpochRecord, EpochRecord]) => {
      const v = (k: keyof EpochRecord) => (diff ? (diff[0][k] as number) - (diff[1][k] as number) : (e![k] as number));
      return [
        label.padEnd(24),
        (diff ? 'diff' : String(e!.epoch)).padStart(5),
        `${pct(v('train_clean_acc'))} %`.padStart(13),
        `${pct(v('train_robust_acc'))} %`.padStart(13),
        `${pct(v('test_clean_acc'))} %`.padStart(13),
        `${pct(v('test_robust_acc'))} %`.padStart(13),
      ].join(' ');
    };
    const last = interrupted ? 'stopped' : 'final';
    lines.push(row(`${r.name} best`, best), row(`${r.name} ${last}`, final), row(`${r.name} best-${last}`, null, [best, final]));
  }
  for (const r of runs)
    if (r.stopped)
      lines.push(
        `${r.name} ${describeStop(r.stopped)}${r.stopped.reason === 'interrupted' ? ' (interrupted; --resume continues it)' : ''}`,
      );
  const shares = runs.map((r) => [r.name, evalShare(r.epochs)] as const).filter(([, v]) => v !== null);
  if (shares.length)
    lines.push(`evaluation share of epoch time: ${shares.map(([name, v]) => `${name} ${(100 * v!).toFixed(0)} %`).join(', ')}`);
  // robust accuracies mean nothing without their attack: one line per distinct protocol
  const protocols = [...new Set(runs.filter((r) => r.evaluation).map((r) => describeEvalProtocol(r.evaluation!)))];
  for (const p of protocols)
    lines.push(
      `robust = ${p}${
        protocols.length > 1
          ? ` (${runs
              .filter((r) => r.evaluation && describeEvalProtocol(r.evaluation) === p)
              .map((r) => r.name)
              .join(', ')})`
          : ''
      }`,
    );
  // the end-of-training evaluation (eval.final.strong), where a run has one
  for (const r of runs) if (r.finalEval) lines.push(...finalEvalLines(r.name, r.finalEval));
  return lines.join('\n');
}
