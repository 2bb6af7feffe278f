import * as fs from 'fs';
import * as path from 'path';
import type { EpochRecord } from '../core/records';
import { selectBestEpoch } from '../analysis/best-epoch';
import { readParquetTable } from '../logs/parquet-writer';
import { evalShare } from '../logs/summary';
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
    out.push(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v === null ? NaN : v])) as unknown as EpochRecord);
  }
  return out.sort((a, b) => a.epoch - b.epoch);
}

const pct = (v: number) => (Number.isFinite(v) ? (100 * v).toFixed(1).padStart(6) : '     -');

/**
 * The end-of-run table: per run, train and test, clean and robust accuracy at the best and the final
 * epoch and best − final (train accuracies are against the labels trained on), then each run's share of
 * epoch time spent evaluating.
 */
export function renderSummaryTable(runs: readonly { name: string; epochs: readonly EpochRecord[]; evaluation?: EvalProtocol | null }[]): string {
  const lines: string[] = [];
  const head = ['run'.padEnd(24), 'epoch', '  train clean', ' train robust', '   test clean', '  test robust'].join(' ');
  lines.push(head, '-'.repeat(head.length));
  for (const r of runs) {
    const evaluated = r.epochs.filter((e) => Number.isFinite(e.test_robust_acc));
    if (evaluated.length === 0) continue;
    const bf = selectBestEpoch(evaluated.map((e) => ({ epoch: e.epoch, robustAcc: e.test_robust_acc, cleanAcc: e.test_clean_acc })));
    const best = evaluated.find((e) => e.epoch === bf.best.epoch)!;
    const final = evaluated[evaluated.length - 1];
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
    lines.push(row(`${r.name} best`, best), row(`${r.name} final`, final), row(`${r.name} best-final`, null, [best, final]));
  }
  const shares = runs.map((r) => [r.name, evalShare(r.epochs)] as const).filter(([, v]) => v !== null);
  if (shares.length) lines.push(`evaluation share of epoch time: ${shares.map(([name, v]) => `${name} ${(100 * v!).toFixed(0)} %`).join(', ')}`);
  // robust accuracies mean nothing without their attack: one line per distinct protocol
  const protocols = [...new Set(runs.filter((r) => r.evaluation).map((r) => describeEvalProtocol(r.evaluation!)))];
  for (const p of protocols) lines.push(`robust = ${p}${protocols.length > 1 ? ` (${runs.filter((r) => r.evaluation && describeEvalProtocol(r.evaluation) === p).map((r) => r.name).join(', ')})` : ''}`);
  return lines.join('\n');
}
