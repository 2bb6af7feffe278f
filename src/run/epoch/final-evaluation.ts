import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from '../../core/rng';
import { gradientMaskingChecks, type SanityReport } from '../../evaluation/sanity-checks';
import { defaultStrongAttacks, evaluateStrongSteps } from '../../evaluation/evaluate-strong';
import { loadWeights } from '../../models/checkpoint';
import type { RunParts } from '../../config/build-run';
import { finalAutoAttack } from '../final-autoattack';
import type { EpochRecord } from '../../core/records';
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
 * `epochs`: the run's records (the stream's history); the model holds the last one's weights.
 */
export async function finalEvaluation(run: RunContext, epochs: readonly EpochRecord[]): Promise<void> {
  const { spec, parts, store, runDir } = run;
  const { model } = parts;
  const last = epochs[epochs.length - 1];
  const data = testExamples(parts, spec.eval.final.examples);
  // the run's one threat model: the sanity checks, the strong suite and AutoAttack all attack in its ball
  const { threat } = parts;
  const { eps, norm } = threat;
  const bs = Math.min(data.labels.length, spec.data.testBatchSize);
  const [H, W, C] = model.inputShape;
  const x = tf.tensor4d(data.x.subarray(0, bs * H * W * C), [bs, H, W, C]);
  const y = tf.tensor1d(data.labels.subarray(0, bs), 'int32');
  let sanity: SanityReport;
  try {
    sanity = gradientMaskingChecks(model, x, y, { threat, seed: deriveSeed(spec.seed, 'sanity') });
  } finally {
    x.dispose();
    y.dispose();
  }
  for (const message of sanity.warnings) await run.emit({ type: 'warning', epoch: last.epoch, message });
  const result: Record<string, unknown> = { epoch: last.epoch, norm, eps, sanity };
  if (spec.eval.final.strong === 'autoattack') {
    const aa = await finalAutoAttack(model, data, {
      runDir,
      best: store.bestWeightsFile(),
      threat,
      seed: spec.seed,
      batchSize: spec.data.testBatchSize,
      lastEpoch: last.epoch,
      onProgress: (progress) => run.emit({ type: 'eval-progress', epoch: last.epoch, progress }),
    });
    result.autoattack = aa;
    for (const s of [aa.final, aa.best])
      if (s)
        for (const message of s.warnings)
          await run.emit({ type: 'warning', epoch: last.epoch, message: `AutoAttack (${s.checkpoint}): ${message}` });
  } else if (spec.eval.final.strong) {
    const attacks = defaultStrongAttacks(threat, model.numClasses, spec.eval.final.restarts);
    result.attacks = attacks.map((a) => ({ name: a.name, ...a.settings }));
    const strong = async (label: string) => {
      const t0 = performance.now();
      const steps = evaluateStrongSteps(model, data, {
        threat,
        seed: deriveSeed(spec.seed, 'final-eval'),
        batchSize: spec.data.testBatchSize,
        attacks,
      });
      let step = steps.next();
      for (; !step.done; step = steps.next()) {
        const p = step.value;
        const progress = {
          what: `strong ${label}`,
          step: p.attack,
          stepIndex: p.index,
          steps: p.attacks,
          batch: p.batch,
          batches: p.batches,
          phase: p.phase,
          attacked: p.attacked,
          stepSeconds: p.seconds,
          elapsed: (performance.now() - t0) / 1000,
          robustAcc: p.robustSoFar,
        };
        await run.emit({ type: 'eval-progress', epoch: last.epoch, progress });
      }
      const e = step.value;
      return { checkpoint: label, n: e.n, clean_acc: e.cleanAcc, per_attack: e.perAttack, worst_case_acc: e.worstCaseAcc };
    };
    const finalEval = await strong(`final (epoch ${last.epoch})`);
    // the checkpoint's best weights, checked to hold the epoch the records name (a missing file is an error)
    const best = store.bestWeightsFile();
    let bestEval: Awaited<ReturnType<typeof strong>> | null = null;
    if (best && best.epoch !== last.epoch) {
      loadWeights(model, best.file);
      bestEval = await strong(`best (epoch ${best.epoch})`);
    }
    // best = final epoch: the same weights, so the same numbers; no evaluated epoch: no best
    result.strong = {
      final: finalEval,
      best: best === null ? null : (bestEval ?? { ...finalEval, checkpoint: `best (epoch ${best.epoch})` }),
    };
  }
  writeFileDurable(
    store.folder.file('finalEval'),
    JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n',
    { mkdir: true },
  );
}
