import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runWithEarlyStop } from '../../examples/early-stop-on-onset';
import { duck, lit } from '../logs/duck';
import { ranOnAutomaticBackend } from './automatic-backend';

describe('examples/early-stop-on-onset.ts: an epoch operator that stops at robust-overfitting onset', () => {
  jest.setTimeout(300_000);

  it('stops at the first epoch whose test robust accuracy is more than k points below its best, and completes there', async () => {
    const k = 2;
    const epochs = 12;
    const outcome = await runWithEarlyStop({
      outDir: fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-early-stop-')),
      points: k,
      epochs,
      trainSize: 100,
      testSize: 50,
    });
    // the onset, computed independently from the logged epochs table
    const rows = await duck(
      `SELECT epoch, test_robust_acc FROM read_parquet(${lit(path.join(outcome.runDir, 'epochs.parquet'))}) ORDER BY epoch`,
    );
    let best = -Infinity;
    let onset: number | null = null;
    for (const r of rows) {
      best = Math.max(best, r.test_robust_acc);
      if (onset === null && 100 * (best - r.test_robust_acc) > k) onset = r.epoch;
    }
    expect(onset).not.toBeNull();
    expect(onset!).toBeLessThan(epochs);
    // the run trained up to the onset epoch and no further
    expect(rows.map((r) => r.epoch)).toEqual(Array.from({ length: onset! }, (_, i) => i + 1));
    expect(outcome.status).toBe('completed');
    expect(fs.existsSync(path.join(outcome.runDir, '_SUCCESS'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(outcome.runDir, 'final_eval.json'), 'utf8')).epoch).toBe(onset);
    // on the backend atflow chooses (tensorflow where it is built), not a hard-coded wasm
    const b = await ranOnAutomaticBackend(outcome.runDir);
    expect(b.ran).toBe(b.automatic);
  });
});
