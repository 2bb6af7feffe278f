import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from '../../core/rng';
import { gradientMaskingChecks, type SanityReport } from '../../evaluation/sanity-checks';
import { defaultStrongAttacks, evaluateStrong } from '../../evaluation/evaluate-strong';
import type { RunParts } from '../../config/build-run';
import { finalAutoAttack } from '../final-autoattack';
import type { RunContext } from './run-context';
import { writeFileDurable } from '../../core/durable-file';

/** The first `n` test examples as host arrays (floats in [0, 1]) with their labels. */
function testExamples(parts: RunParts, n: number): { x: Float32Array; labels: Int32Array } {
  const size = Math.min(n, parts.planner.size('test'));
  const indices = Int32Array.from({ length: size }, (_, i) => i);
  const b = parts.source.load({ split: 'test', epoch: 0, step: 0, indices });
  const x = b.x.dataSync() as Float32Array;
  b.x.dispose();
  return { x, labels: b.labelsTrue };
}

/**
 * After the last epoch: gradient-masking sanity checks on one test batch (warnings, never errors) and,
 * when asked, the strong evaluation of the best and final checkpoints. Written to final_eval.json.
 */
export async function finalEvaluation(run: RunContext): Promise<void> {
  const { spec, parts, store, runDir, epochs } = run;
  const { model } = parts;
  const last = epochs[epochs.length - 1];
  const data = testExamples(parts, spec.eval.final.examples);
  // the run's threat model: an ℓ2 run is checked and attacked in the ℓ2 ball
  const { eps, norm } = parts.evalAttack;
  const bs = Math.min(data.labels.length, spec.data.testBatchSize);
  const [H, W, C] = model.inputShape;
  const x = tf.tensor4d(data.x.subarray(0, bs * H * W * C), [bs, H, W, C]);
  const y = tf.tensor1d(data.labels.subarray(0, bs), 'int32');
  let sanity: SanityReport;
  try {
    sanity = gradientMaskingChecks(model, x, y, { eps, norm, alpha: parts.evalAttack.alpha, steps: parts.evalAttack.steps, seed: deriveSeed(spec.seed, 'sanity') });
  } finally {
    x.dispose();
    y.dispose();
  }
  for (const message of sanity.warnings) await run.emit({ type: 'warning', epoch: last.epoch, message });
  const result: Record<string, unknown> = { epoch: last.epoch, norm, eps, sanity };
  if (spec.eval.final.strong === 'autoattack') {
    const aa = await finalAutoAttack(model, data, { store, eps, norm: spec.attack.norm, seed: spec.seed, batchSize: spec.data.testBatchSize, lastEpoch: last.epoch, bestEpoch: last.best_epoch });
    result.autoattack = aa;
    for (const s of [aa.final, aa.best]) for (const message of s.warnings) await run.emit({ type: 'warning', epoch: last.epoch, message: `AutoAttack (${s.checkpoint}): ${message}` });
  } else if (spec.eval.final.strong) {
    const attacks = defaultStrongAttacks(eps, model.numClasses, spec.eval.final.restarts, norm);
    result.attacks = attacks.map((a) => ({ name: a.name, ...a.settings }));
    const strong = (label: string) => {
      const e = evaluateStrong(model, data, { eps, seed: deriveSeed(spec.seed, 'final-eval'), batchSize: spec.data.testBatchSize, attacks });
      return { checkpoint: label, n: e.n, clean_acc: e.cleanAcc, per_attack: e.perAttack, worst_case_acc: e.worstCaseAcc };
    };
    const finalEval = strong(`final (epoch ${last.epoch})`);
    const bestEpoch = last.best_epoch;
    let bestEval: ReturnType<typeof strong> | null = null;
    if (bestEpoch > 0 && bestEpoch !== last.epoch) {
      // the best epoch's weights, checked to be that epoch's (a missing or other epoch's file is an error)
      store.loadBest(model, bestEpoch);
      bestEval = strong(`best (epoch ${bestEpoch})`);
    }
    result.strong = { final: finalEval, best: bestEval ?? { ...finalEval, checkpoint: `best (epoch ${bestEpoch})` } };
  }
  writeFileDurable(store.folder.file('finalEval'), JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n', { mkdir: true });
}
