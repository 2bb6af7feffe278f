import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { checkpointEpochs } from '../../src/store/checkpoint-store';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun } from '../../src/run/execute-run';
import { parquetRunSink } from '../../src/logs/sinks';
import { resolveRuns } from '../../src/config/spec';
import { readEpochRecords, renderSummaryTable } from '../../src/cli/summary-table';
import { readRunSummary, SummaryWriter, type RunSummary } from '../../src/logs/summary';
import { tempRoot, tinySpec } from '../reliability/helpers';
import { duck, lit } from '../logs/duck';

/**
 * A resumed run's summary.json covers the whole run, not only the epochs after the resume: a run stopped
 * after epoch 2 of 4 and resumed reports what the uninterrupted run reports (epochs, best, final,
 * robust_gap, eval_share over all epochs). Before the fix it counted 2 epochs and took the best of
 * epochs 3–4, losing a best epoch from before the resume.
 */

// seed 7, lr 0.5: the test robust accuracy peaks at epoch 2 and falls after it (checked below), so the
// best epoch lies before the resume and best − final is not 0
const spec = tinySpec('resume-summary', {
  epochs: 4,
  data: { source: 'mnist', trainSize: 64, testSize: 32, batchSize: 16, testBatchSize: 32 },
  optimizer: { lr: 0.5 },
  logging: { examples: false },
  eval: { trainSubset: 16, final: { examples: 8 } },
});

/** Everything but the wall-clock fields. */
function withoutClock(s: RunSummary): Omit<RunSummary, 'started_at' | 'wall_ms' | 'eval_share'> {
  const { started_at: _s, wall_ms: _w, eval_share: _e, ...rest } = s;
  return rest;
}

/** The printed table without its wall-clock line (the evaluation's share of epoch time). */
const tableRows = (runDir: string) =>
  renderSummaryTable([{ name: 'r', epochs: readEpochRecords(runDir) }])
    .split('\n')
    .filter((l) => !l.startsWith('evaluation share'));

describe('summary of a resumed run', () => {
  it('a run stopped after epoch 2 of 4 and resumed writes the summary.json of the uninterrupted run', async () => {
    await initBackend('wasm');
    const [run] = resolveRuns(spec);
    const registry = defaultRegistry();
    const sinks = () => [parquetRunSink(), new SummaryWriter()];
    const tensors = tf.memory().numTensors;

    const reference = await executeRun(run, { outDir: tempRoot('atflow-resume-ref-'), registry, backend: 'wasm', sinks });
    expect(reference.status).toBe('completed');
    const ref = readRunSummary(reference.runDir);
    expect(ref.epochs).toBe(4);
    expect(ref.best!.epoch).toBeLessThanOrEqual(2);
    expect(ref.robust_gap!).toBeGreaterThan(0);

    const out = tempRoot('atflow-resume-');
    let stop = false;
    const first = await executeRun(run, {
      outDir: out,
      registry,
      backend: 'wasm',
      sinks,
      observe: (ev$) =>
        ev$.subscribe((ev) => {
          if (ev.type === 'epoch-end' && ev.record.epoch === 2) stop = true;
        }),
      shouldStop: () => stop,
    });
    expect(first.status).toBe('interrupted');
    expect(readRunSummary(first.runDir)).toMatchObject({ status: 'interrupted', epochs: 2 });
    const resumed = await executeRun(run, { outDir: out, registry, backend: 'wasm', resume: true, sinks });
    expect(resumed.status).toBe('completed');
    expect(tf.memory().numTensors).toBe(tensors);

    const got = readRunSummary(resumed.runDir);
    expect(withoutClock(got)).toEqual(withoutClock(ref));

    // and what DuckDB reads from the resumed run's epochs.parquet (all 4 epochs, 2 of them from before the resume)
    const rows = await duck(`SELECT * FROM read_parquet(${lit(path.join(resumed.runDir, 'epochs.parquet'))}) ORDER BY epoch`);
    expect(rows.map((r) => r.epoch)).toEqual([1, 2, 3, 4]);
    const last = rows[3];
    const bestRow = rows.find((r) => r.epoch === last.best_epoch)!;
    expect(got.final).toEqual({
      epoch: 4,
      test_clean_acc: last.test_clean_acc,
      test_robust_acc: last.test_robust_acc,
      train_clean_acc: last.train_clean_acc,
      train_robust_acc: last.train_robust_acc,
    });
    expect(got.best).toEqual({
      epoch: bestRow.epoch,
      test_clean_acc: bestRow.test_clean_acc,
      test_robust_acc: bestRow.test_robust_acc,
      train_clean_acc: bestRow.train_clean_acc,
      train_robust_acc: bestRow.train_robust_acc,
    });
    expect(got.robust_gap).toBe(bestRow.test_robust_acc - last.test_robust_acc);
    const share = rows.reduce((a, r) => a + r.eval_ms, 0) / rows.reduce((a, r) => a + r.wall_ms, 0);
    expect(got.eval_share).toBeCloseTo(share, 12);

    // the printed summary table reads epochs.parquet: the same best and final rows as the reference's
    expect(tableRows(resumed.runDir)).toEqual(tableRows(reference.runDir));
  }, 180_000);

  it('restores the NaN of unevaluated epoch fields that state.json stored as null', () => {
    const json = JSON.parse(
      JSON.stringify({ epochs: [{ epoch: 1, test_robust_acc: NaN, train_loss: 2.5, best_epoch: 0, best_rule: 'r' }] }),
    );
    expect(json.epochs[0].test_robust_acc).toBeNull();
    expect(checkpointEpochs(json)).toEqual([{ epoch: 1, test_robust_acc: NaN, train_loss: 2.5, best_epoch: 0, best_rule: 'r' }]);
    expect(checkpointEpochs({})).toEqual([]);
  });
});
