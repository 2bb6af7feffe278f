import * as fs from 'fs';
import * as path from 'path';
import type { Model } from '../core/model';
import type { EvalProgress } from '../core/run-event';
import { deriveSeed } from '../core/rng';
import { loadWeights } from '../models/checkpoint';
import type { ApgdNorm } from '../operators/attacks/apgd';
import { evaluateAutoAttack, type AutoAttackSummary } from './evaluate-autoattack';

/**
 * `eval.final.strong: "autoattack"`: the standard AutoAttack suite on the final and the best checkpoint
 * at the run's ε and norm, each written to <runDir>/eval/<final|best>-standard-<norm>-test/ as
 * `atflow eval` writes it; the summaries go into final_eval.json. Leaves the model at the best weights
 * when a best file exists (as the PGD-based strong evaluation does). When the best epoch is the last one
 * the weights are the same: they are evaluated once, and `best` repeats the final summary.
 */
export async function finalAutoAttack(
  model: Model,
  data: { readonly x: Float32Array; readonly labels: Int32Array },
  options: {
    runDir: string;
    checkpointsDir: string;
    eps: number;
    norm: ApgdNorm;
    seed: number;
    batchSize: number;
    lastEpoch: number;
    bestEpoch: number;
    /** Progress of each stage of each batch (the run's progress display); awaited. */
    onProgress?: (p: EvalProgress) => void | Promise<void>;
  },
): Promise<{ final: AutoAttackSummary; best: AutoAttackSummary }> {
  const index = Int32Array.from({ length: data.labels.length }, (_, i) => i);
  const run = (tag: string, label: string) =>
    evaluateAutoAttack(model, { ...data, index }, path.join(options.runDir, 'eval', `${tag}-standard-${options.norm}-test`), {
      eps: options.eps,
      norm: options.norm,
      attacks: 'standard',
      batchSize: options.batchSize,
      seed: deriveSeed(options.seed, 'final-autoattack'),
      checkpoint: label,
      split: 'test',
      resume: true,
      onProgress: options.onProgress,
      progressLabel: `autoattack ${label}`,
    });
  const final = await run('final', `final (epoch ${options.lastEpoch})`);
  const bestFile = path.join(options.checkpointsDir, 'best.safetensors');
  if (options.bestEpoch > 0 && options.bestEpoch !== options.lastEpoch && fs.existsSync(bestFile)) {
    loadWeights(model, bestFile);
    return { final, best: await run('best', `best (epoch ${options.bestEpoch})`) };
  }
  return { final, best: { ...final, checkpoint: `best (epoch ${options.bestEpoch})` } };
}
