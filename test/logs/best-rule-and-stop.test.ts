import type { EpochRecord } from '../../src/core/records';
import type { RunEvent } from '../../src/core/run-event';
import { selectBestEpoch } from '../../src/analysis/best-epoch';
import { RunSummaryBuilder } from '../../src/logs/summary';
import { renderSummaryTable } from '../../src/cli/summary-table';
import { statusOf } from '../../src/report/report';
import type { ReportRun } from '../../src/report/report-data';

/**
 * Issue 22: one best-epoch rule. trackBest picks on `eval.selectOn` (validation when asked), while the
 * summary's pickBest and the printed table picked on the test split: on a run whose validation-best
 * and test-best epochs differ, summary.json and the table disagreed with the run's own best_epoch.
 * And a run stopped with Ctrl-C labelled its last epoch "final" in the table, summary.json and report.
 */

/** Test-best is epoch 3 (0.50), validation-best epoch 2 (0.60): the two splits disagree. */
const SCORES = [
  { epoch: 1, test: 0.3, val: 0.4 },
  { epoch: 2, test: 0.4, val: 0.6 },
  { epoch: 3, test: 0.5, val: 0.5 },
  { epoch: 4, test: 0.45, val: 0.55 },
];

function record(s: (typeof SCORES)[number], bestEpoch: number): EpochRecord {
  return {
    epoch: s.epoch,
    lr: 0.1,
    te_weight: 0,
    train_loss: 1,
    train_clean_acc: 0.9,
    train_clean_loss: 0.3,
    train_robust_acc: 0.5,
    train_robust_loss: 1,
    test_clean_acc: 0.8,
    test_clean_loss: 0.5,
    test_robust_acc: s.test,
    test_robust_loss: 1,
    grad_norm_sq_mean: 1,
    wall_ms: 10,
    eval_ms: 5,
    best_epoch: bestEpoch,
    best_rule: 'r',
    // the validation split's accuracies travel on the epoch-end records (they are not epochs.parquet columns)
    ...({ val_clean_acc: 0.8, val_robust_acc: s.val } as object),
  } as EpochRecord;
}

/** The reference: the paper's rule (docs/algorithms.md §6) applied to the validation scores by hand. */
const VAL_BEST = selectBestEpoch(SCORES.map((s) => ({ epoch: s.epoch, robustAcc: s.val, cleanAcc: 0.8 }))).best.epoch;
const TEST_BEST = selectBestEpoch(SCORES.map((s) => ({ epoch: s.epoch, robustAcc: s.test, cleanAcc: 0.8 }))).best.epoch;

function events(records: EpochRecord[], planned: number, status: 'completed' | 'interrupted'): RunEvent[] {
  return [
    {
      type: 'run-start',
      runId: 'r',
      runDir: '/nonexistent',
      spec: { eval: { selectOn: 'val' } },
      seed: 1,
      backend: { name: 'cpu', provider: 'p', tfjsVersion: 'v', tensorflowVersion: null, threads: 1 },
      startedAt: 't',
      epochs: planned,
      numClasses: 10,
      trainSize: 10,
      firstEpoch: 1,
      priorEpochs: [],
    },
    ...records.map((record): RunEvent => ({ type: 'epoch-end', record })),
    { type: 'run-end', status, wallMs: 1 },
  ];
}

function summaryOf(evs: RunEvent[]) {
  const b = new RunSummaryBuilder();
  for (const ev of evs) b.observe(ev);
  return b.build();
}

describe('one best-epoch rule for trackBest, summary.json and the table', () => {
  it('the scores really disagree between the splits', () => {
    expect([VAL_BEST, TEST_BEST]).toEqual([2, 3]);
  });

  it("summary.json's fallback (records that carry no decision) picks on eval.selectOn, as trackBest does", () => {
    const s = summaryOf(
      events(
        SCORES.map((x) => record(x, 0)),
        4,
        'completed',
      ),
    );
    expect(s.best!.epoch).toBe(VAL_BEST);
  });

  it("the table shows the run's own best epoch (decided on the validation split), the same as summary.json", () => {
    const records = SCORES.map((x) => record(x, VAL_BEST));
    const s = summaryOf(events(records, 4, 'completed'));
    expect(s.best!.epoch).toBe(VAL_BEST);
    const bestRow = renderSummaryTable([{ name: 'r', epochs: records }])
      .split('\n')
      .find((l) => l.startsWith('r best '))!;
    expect(bestRow.split(/\s+/)[2]).toBe(String(VAL_BEST));
  });
});

describe('a run stopped short of its epochs says so', () => {
  const records = SCORES.slice(0, 3).map((x) => record(x, 3));

  it('summary.json: stopped at epoch 3 of 80 (interrupted); a completed run: not stopped', () => {
    expect(summaryOf(events(records, 80, 'interrupted')).stopped).toEqual({ epoch: 3, of: 80, reason: 'interrupted' });
    expect(summaryOf(events(records, 3, 'completed')).stopped).toBeNull();
    expect(summaryOf(events(records, 80, 'completed')).stopped).toEqual({ epoch: 3, of: 80, reason: 'early' });
  });

  it('the table labels its last row "stopped", not "final", and says "stopped at epoch 3 of 80"', () => {
    const lines = renderSummaryTable([{ name: 'r', epochs: records, stopped: { epoch: 3, of: 80, reason: 'interrupted' } }]).split('\n');
    expect(lines.some((l) => /^r final\b/.test(l))).toBe(false);
    expect(lines.some((l) => /^r stopped\s+3\b/.test(l))).toBe(true);
    expect(lines).toContain('r stopped at epoch 3 of 80 (interrupted; --resume continues it)');
  });

  it('the report: "stopped at epoch 3 of 80"', () => {
    const run = { finished: false, plannedEpochs: 80, epochs: records as unknown as ReportRun['epochs'] } as ReportRun;
    expect(statusOf(run)).toBe('stopped at epoch 3 of 80');
    expect(statusOf({ ...run, finished: true })).toBe('finished, stopped early at epoch 3 of 80');
  });
});
