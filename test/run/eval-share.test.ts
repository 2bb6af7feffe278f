import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun } from '../../src/run/execute-run';
import { parquetRunSink } from '../../src/logs/sinks';
import { loadRuns, resolveRuns } from '../../src/config/spec';
import { readEpochRecords, renderSummaryTable } from '../../src/cli/summary-table';
import { readRunSummary, SummaryWriter } from '../../src/logs/summary';
import { tempRoot, tinySpec } from '../reliability/helpers';
import { duck, lit } from '../logs/duck';

/**
 * Issue 11: evaluating the whole training set every epoch can double a run's cost. The paper-scale
 * configs bound it with a fixed eval.trainSubset, and every run reports the evaluation's share of epoch
 * time (epochs.parquet eval_ms, summary.json eval_share, the printed summary table).
 */

const CONFIG_DIR = path.join(__dirname, '..', '..', 'config');

describe('the cost of per-epoch evaluation', () => {
  it('paper-scale configs evaluate a fixed 2000-example training subset', () => {
    const paperScale = fs.readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.json') && !f.endsWith('-cpu.json') && f !== 'quickstart.json');
    expect(paperScale.length).toBeGreaterThanOrEqual(5);
    for (const f of paperScale) {
      for (const { spec, variant } of loadRuns(path.join(CONFIG_DIR, f))) {
        if (!spec.eval.train) continue;
        expect({ f, variant, trainSubset: spec.eval.trainSubset }).toEqual({ f, variant, trainSubset: 2000 });
      }
    }
  });

  it('a run records eval_ms per epoch and its share of epoch time in summary.json and the summary table', async () => {
    await initBackend('wasm');
    const out = tempRoot('atflow-evalshare-');
    const [run] = resolveRuns(tinySpec('share', { eval: { every: 1, trainSubset: 8, final: { examples: 8 } } }));
    const outcome = await executeRun(run, {
      outDir: out,
      registry: defaultRegistry(),
      backend: 'wasm',
      sinks: () => [parquetRunSink(), new SummaryWriter()],
    });
    expect(outcome.status).toBe('completed');
    const rows = await duck(
      `SELECT epoch, wall_ms, eval_ms FROM read_parquet(${lit(path.join(outcome.runDir, 'epochs.parquet'))}) ORDER BY epoch`,
    );
    expect(rows.map((r) => r.epoch)).toEqual([1, 2]);
    for (const r of rows) {
      expect(r.eval_ms as number).toBeGreaterThan(0);
      expect(r.eval_ms as number).toBeLessThanOrEqual(r.wall_ms as number);
    }
    const share = rows.reduce((a, r) => a + (r.eval_ms as number), 0) / rows.reduce((a, r) => a + (r.wall_ms as number), 0);
    const summary = readRunSummary(outcome.runDir);
    expect(summary.eval_share).toBeCloseTo(share, 12);
    // the training-set pass covered the 8-example subset only (the test split's 8 rows are logged apart)
    const evalRows = await duck(
      `SELECT split, count(*) AS n FROM read_parquet(${lit(path.join(outcome.runDir, 'examples', '*', '*.parquet'))}, hive_partitioning = false) WHERE phase = 'eval' AND epoch = 1 GROUP BY split ORDER BY split`,
    );
    expect(evalRows.map((r) => [r.split, Number(r.n)])).toEqual([
      ['test', 8],
      ['train', 8],
    ]);
    const table = renderSummaryTable([{ name: 'share', epochs: readEpochRecords(outcome.runDir) }]);
    expect(table).toContain(`evaluation share of epoch time: share ${(100 * share).toFixed(0)} %`);
  }, 120_000);
});
