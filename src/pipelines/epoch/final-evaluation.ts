import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from '../../core/rng';
import { gradientMaskingChecks, type SanityReport } from '../../operators/sanity-checks';
import { defaultStrongAttacks, evaluateStrongSteps } from '../../operators/evaluate-strong';
import { loadWeights } from '../../models/checkpoint';
import { writeFileAtomic } from '../../sinks/parquet-writer';
import type { RunParts } from '../build-run';
import { finalAutoAttack } from '../final-autoattack';
import type { RunContext } from './run-context';

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
    const aa = await finalAutoAttack(model, data, {
      runDir,
      checkpointsDir: store.dir,
      eps,
      norm: spec.attack.norm,
      seed: spec.seed,
      batchSize: spec.data.testBatchSize,
      lastEpoch: last.epoch,
      bestEpoch: last.best_epoch,
      onProgress: (progress) => run.emit({ type: 'eval-progress', epoch: last.epoch, progress }),
    });
    result.autoattack = aa;
    for (const s of [aa.final, aa.best]) for (const message of s.warnings) await run.emit({ type: 'warning', epoch: last.epoch, message: `AutoAttack (${s.checkpoint}): ${message}` });
  } else if (spec.eval.final.strong) {
    const attacks = defaultStrongAttacks(eps, model.numClasses, spec.eval.final.restarts, norm);
    result.attacks = attacks.map((a) => ({ name: a.name, ...a.settings }));
    const strong = async (label: string) => {
      const t0 = performance.now();
      const steps = evaluateStrongSteps(model, data, { eps, seed: deriveSeed(spec.seed, 'final-eval'), batchSize: spec.data.testBatchSize, attacks });
      let step = steps.next();
      for (; !step.done; step = steps.next()) {
        const p = step.value;
        const progress = { what: `strong ${label}`, step: p.attack, stepIndex: p.index, steps: p.attacks, batch: p.batch, batches: p.batches, phase: p.phase, attacked: p.attacked, stepSeconds: p.seconds, elapsed: (performance.now() - t0) / 1000, robustAcc: p.robustSoFar };
        await run.emit({ type: 'eval-progress', epoch: last.epoch, progress });
      }
      const e = step.value;
      return { checkpoint: label, n: e.n, clean_acc: e.cleanAcc, per_attack: e.perAttack, worst_case_acc: e.worstCaseAcc };
    };
    const finalEval = await strong(`final (epoch ${last.epoch})`);
    const bestEpoch = last.best_epoch;
    const bestFile = path.join(store.dir, 'best.safetensors');
    let bestEval: Awaited<ReturnType<typeof strong>> | null = null;
    if (bestEpoch > 0 && bestEpoch !== last.epoch && fs.existsSync(bestFile)) {
      loadWeights(model, bestFile);
      bestEval = await strong(`best (epoch ${bestEpoch})`);
    }
    result.strong = { final: finalEval, best: bestEval ?? { ...finalEval, checkpoint: `best (epoch ${bestEpoch})` } };
  }
  writeFileAtomic(path.join(runDir, 'final_eval.json'), JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}
