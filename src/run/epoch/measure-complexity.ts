import * as tf from '@tensorflow/tfjs';
import { concatMap, type MonoTypeOperatorFunction } from 'rxjs';
import type { Model } from '../../core/model';
import type { ExampleColumns } from '../../core/records';
import { deriveSeed, Rng } from '../../core/rng';
import { complexityMeasures } from '../../analysis/complexity';
import { pgd } from '../../algorithms/attacks/pgd';
import { crossEntropy } from '../../algorithms/objectives/ce';
import type { RunParts } from '../../config/build-run';
import type { RunSpec } from '../../config/spec';
import type { RankedEpoch, RunContext } from './run-context';

function concatMargins(cols: readonly ExampleColumns[]): Float32Array {
  const out = new Float32Array(cols.reduce((n, c) => n + c.margin_clean.length, 0));
  let o = 0;
  for (const c of cols) {
    out.set(c.margin_clean, o);
    o += c.margin_clean.length;
  }
  return out;
}

/**
 * The robust loss sharpness perturbs: mean CE after the evaluation attack (recomputed for the
 * weights at hand, fixed attack seed) on a fixed seeded batch of training examples with their used labels.
 */
export async function robustLossOnFixedBatch(model: Model, spec: RunSpec, parts: RunParts): Promise<number> {
  const n = parts.planner.size('train');
  const take = Math.min(n, spec.data.testBatchSize);
  const indices = new Rng(deriveSeed(spec.seed, 'sharpness-batch')).permutation(n).slice(0, take).sort();
  const loaded = parts.source.load({ split: 'train', epoch: 0, step: 0, indices });
  const y = tf.tensor1d(
    Int32Array.from(indices, (i) => parts.labels.labelsUsed[i]),
    'int32',
  );
  try {
    const xAdv = pgd(model, loaded.x, y, deriveSeed(spec.seed, 'sharpness-attack'), parts.threat);
    const loss = tf.tidy(() => crossEntropy(model.apply(xAdv, 'eval'), y).dataSync()[0]);
    xAdv.dispose();
    return loss;
  } finally {
    y.dispose();
    loaded.x.dispose();
  }
}

/**
 * Every `every` epochs and at the last (`logging.complexityEvery`; 0 = never): the complexity measures
 * of the model (norms, margins of the eval-mode training rows, sharpness of the robust loss) as a
 * 'complexity' event.
 */
export function measureComplexity(
  run: RunContext,
  every = run.spec.logging.complexityEvery,
  last = run.spec.epochs,
): MonoTypeOperatorFunction<RankedEpoch> {
  const { spec, parts } = run;
  return concatMap(async (s) => {
    if (every <= 0 || (s.epoch % every !== 0 && s.epoch !== last)) return s;
    const margins = concatMargins(s.evaluation.trainColumns);
    const measures = await complexityMeasures(parts.model, {
      seed: spec.seed,
      epoch: s.epoch,
      epochRecord: s.record,
      ...(margins.length ? { margins } : {}),
      sharpness: { loss: (m) => robustLossOnFixedBatch(m, spec, parts) },
    });
    await run.emit({ type: 'complexity', epoch: s.epoch, measures });
    return s;
  });
}
