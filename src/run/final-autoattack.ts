import * as path from 'path';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import { loadWeights } from '../models/checkpoint';
import type { ApgdNorm } from '../algorithms/attacks/apgd';
import { evaluateAutoAttack, type AutoAttackSummary } from './evaluate-autoattack';

/**
 * `eval.final.strong: "autoattack"`: the standard AutoAttack suite on the final and the best checkpoint
 * at the run's ε and norm, each written to <runDir>/eval/<final|best>-standard-<norm>-test/ as
 * `atflow eval` writes it; the summaries go into final_eval.json. `best`: the checkpoint's best weights
 * (CheckpointStore.bestWeightsFile, checked against the records), null when no epoch was evaluated.
 * Leaves the model at the best weights when they differ from the final ones (as the PGD-based strong
 * evaluation does).
 */
export async function finalAutoAttack(
  model: Model,
  data: { readonly x: Float32Array; readonly labels: Int32Array },
  options: { runDir: string; best: { readonly file: string; readonly epoch: number } | null; eps: number; norm: ApgdNorm; seed: number; batchSize: number; lastEpoch: number },
): Promise<{ final: AutoAttackSummary; best: AutoAttackSummary | null }> {
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
    });
  const final = await run('final', `final (epoch ${options.lastEpoch})`);
  const best = options.best;
  if (best === null) return { final, best: null };
  if (best.epoch !== options.lastEpoch) {
    loadWeights(model, best.file);
    return { final, best: await run('best', `best (epoch ${best.epoch})`) };
  }
  return { final, best: { ...final, checkpoint: `best (epoch ${best.epoch})` } };
}
