import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import type { CheckpointStore } from '../store/checkpoint-store';
import type { ApgdNorm } from '../algorithms/attacks/apgd';
import { evaluateAutoAttack, type AutoAttackSummary } from './evaluate-autoattack';

/**
 * `eval.final.strong: "autoattack"`: the standard AutoAttack suite on the final and the best checkpoint
 * at the run's ε and norm, each written to <runDir>/eval/<final|best>-standard-<norm>-test/ as
 * `atflow eval` writes it; the summaries go into final_eval.json. Leaves the model at the best weights
 * when the best epoch is not the last (as the PGD-based strong evaluation does).
 */
export async function finalAutoAttack(
  model: Model,
  data: { readonly x: Float32Array; readonly labels: Int32Array },
  options: { store: CheckpointStore; eps: number; norm: ApgdNorm; seed: number; batchSize: number; lastEpoch: number; bestEpoch: number },
): Promise<{ final: AutoAttackSummary; best: AutoAttackSummary }> {
  const index = Int32Array.from({ length: data.labels.length }, (_, i) => i);
  const run = (tag: string, label: string) =>
    evaluateAutoAttack(model, { ...data, index }, options.store.folder.evalDir(`${tag}-standard-${options.norm}-test`), {
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
  if (options.bestEpoch > 0 && options.bestEpoch !== options.lastEpoch) {
    options.store.loadBest(model, options.bestEpoch);
    return { final, best: await run('best', `best (epoch ${options.bestEpoch})`) };
  }
  return { final, best: { ...final, checkpoint: `best (epoch ${options.bestEpoch})` } };
}
