import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, tensorflowAvailable } from '../../src/backend/select';
import type { Model } from '../../src/core/model';
import { createModel, loadWeights } from '../../src/models';
import { apgdSingleRun } from '../../src/algorithms/attacks/apgd';
import { classAtRank } from '../../src/algorithms/attacks/apgd-targeted';
import { fabSingleRun } from '../../src/algorithms/attacks/fab';
import { square } from '../../src/algorithms/attacks/square';
import { dlrTargetedLossPerExample } from '../../src/algorithms/objectives/dlr-targeted';
import { autoAttackBatch } from '../../src/evaluation/autoattack';
import { threatModel } from '../../src/evaluation/threat-model';

/**
 * atflow's AutoAttack against the reference implementation (fra31/auto-attack), through the fixture
 * that bench/peers/autoattack_reference.py --mode ci wrote with torch and a checkout of the reference:
 * cnn-small trained with PGD-AT on 10×10 MNIST digits (weights in autoattack-ci.safetensors), 100 test
 * digits as bytes, the reference's APGD-T iterates from a recorded start (ℓ∞ and ℓ2), and the reference's
 * per-stage robust flags for a reduced-budget standard ensemble.
 */
const FIXTURES = path.join(__dirname, '..', 'algorithms', 'attacks', 'fixtures');

interface Trace {
  norm: 'linf' | 'l2';
  eps: number;
  steps: number;
  rank: number;
  start: number[];
  target: number[];
  iterates: number[][];
  last_iterate: number[];
  n_iterates: number;
  fooled: number[];
}
interface FabTrace {
  norm: 'linf' | 'l2';
  steps: number;
  rank: number;
  adv: number[];
  fooled: number[];
  dist: number[];
}
interface Ensemble {
  norm: 'linf' | 'l2';
  eps: number;
  budget: { apgd_steps: number; targets: number; fab_steps: number; square_queries: number };
  robust: Record<string, number[]>;
  accuracy: Record<string, number>;
}
interface Fixture {
  model: { name: string; inputShape: [number, number, number]; numClasses: number };
  x_bytes: number[];
  y: number[];
  apgd_t: Trace[];
  fab_t?: FabTrace[];
  square?: { norm: 'linf' | 'l2'; eps: number; queries: number; robust: number[] }[];
  ensemble: Ensemble[];
}

const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'autoattack-ci.json'), 'utf8')) as Fixture;
const [H, W, C] = fixture.model.inputShape;
const SIZE = H * W * C;

function loadModel(): Model {
  const model = createModel(fixture.model.name, { numClasses: fixture.model.numClasses, inputShape: fixture.model.inputShape, seed: 0 });
  loadWeights(model, path.join(FIXTURES, 'autoattack-ci.safetensors'));
  return model;
}

function images(n: number): tf.Tensor4D {
  return tf.tensor4d(
    Float32Array.from(fixture.x_bytes.slice(0, n * SIZE), (b) => b / 255),
    [n, H, W, C],
  );
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

beforeAll(async () => {
  // the pure-JS cpu backend is too slow for a CNN over 100 digits × thousands of queries
  await initBackend(tensorflowAvailable() ? 'tensorflow' : 'wasm');
});

describe('AutoAttack cross-check against fra31/auto-attack (committed fixture)', () => {
  it.each(fixture.apgd_t.map((t) => [t.norm, t] as const))(
    'APGD-T %s: every iterate from the reference start equals the reference one',
    (_norm, trace) => {
      const base = tf.memory().numTensors;
      const model = loadModel();
      const n = trace.target.length;
      const x = images(n);
      const y = tf.tensor1d(fixture.y.slice(0, n), 'int32');
      const target = tf.tensor1d(trace.target, 'int32');
      const start = tf.tensor4d(trace.start, [n, H, W, C]);
      // the iterates are the inputs the model sees: record them as AutoAttack's generator did
      const seen: Float32Array[] = [];
      const recording: Model = {
        ...model,
        name: model.name,
        numClasses: model.numClasses,
        inputShape: model.inputShape,
        parameters: model.parameters,
        buffers: model.buffers,
        apply: (xx, mode) => {
          seen.push(Float32Array.from(xx.dataSync()));
          return model.apply(xx, mode);
        },
        dispose: () => model.dispose(),
      };
      const run = apgdSingleRun(
        recording,
        x,
        y,
        start,
        trace.eps,
        trace.steps,
        0.75,
        (logits, labels) => dlrTargetedLossPerExample(logits, labels, target),
        trace.norm,
      );
      expect(seen.length).toBe(trace.n_iterates);
      trace.iterates.forEach((want, i) => {
        expect({ iterate: i, diff: maxDiff(seen[i], want) < 2e-5 }).toEqual({ iterate: i, diff: true });
      });
      expect(maxDiff(seen[seen.length - 1], trace.last_iterate)).toBeLessThan(1e-4);
      expect(Array.from(run.fooled)).toEqual(trace.fooled);
      tf.dispose([x, y, target, start, run.xBest, run.xBestAdv]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(base);
    },
  );

  it.each((fixture.fab_t ?? []).map((t) => [t.norm, t] as const))(
    'FAB-T %s (deterministic): the same minimal adversarial points as the reference',
    (_norm, trace) => {
      const base = tf.memory().numTensors;
      const model = loadModel();
      const n = trace.fooled.length;
      const x = images(n);
      const y = tf.tensor1d(fixture.y.slice(0, n), 'int32');
      const clean = tf.tidy(() => Array.from(tf.argMax(model.apply(x, 'eval'), 1).dataSync()));
      const target = tf.tidy(() => classAtRank(model.apply(x, 'eval'), trace.rank));
      const run = fabSingleRun(model, x.dataSync() as Float32Array, y, target, [n, H, W, C], trace.steps, trace.norm, 1.05, 0.9, 0.1);
      let compared = 0;
      for (let i = 0; i < n; i++) {
        if (clean[i] !== fixture.y[i]) continue; // the reference attacks only correctly classified points
        const found = run.dist[i] < 1e10 ? 1 : 0;
        expect({ i, found }).toEqual({ i, found: trace.fooled[i] });
        if (found) {
          expect({ i, dist: Math.abs(run.dist[i] - trace.dist[i]) < 1e-4 }).toEqual({ i, dist: true });
          expect(maxDiff(run.adv.subarray(i * SIZE, (i + 1) * SIZE), trace.adv.slice(i * SIZE, (i + 1) * SIZE))).toBeLessThan(1e-4);
          compared += 1;
        }
      }
      expect(compared).toBeGreaterThan(0);
      tf.dispose([x, y, target]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(base);
    },
  );

  it.each((fixture.square ?? []).map((t) => [t.norm, t] as const))(
    'Square %s alone: robust accuracy within 5 points of the reference (random squares differ)',
    (_norm, ref) => {
      const base = tf.memory().numTensors;
      const model = loadModel();
      const n = fixture.y.length;
      const x = images(n);
      const y = tf.tensor1d(fixture.y, 'int32');
      const adv = square(model, x, y, 0, { eps: ref.eps, norm: ref.norm, queries: ref.queries });
      const robust = tf.tidy(() => Array.from(tf.equal(tf.argMax(model.apply(adv, 'eval'), 1), y).dataSync()));
      // the perturbation stays in the ε-ball and [0, 1]
      const d = tf.tidy(() => {
        const diff = tf.reshape(tf.sub(adv, x), [n, -1]);
        return (ref.norm === 'l2' ? tf.max(tf.norm(diff, 2, 1)) : tf.max(tf.abs(diff))).dataSync()[0];
      });
      expect(d).toBeLessThanOrEqual(ref.eps * (1 + 1e-5));
      const ours = robust.reduce((a, b) => a + b, 0) / n;
      const theirs = ref.robust.reduce((a, b) => a + b, 0) / n;
      expect({ ours, theirs, within: Math.abs(ours - theirs) <= 0.05 }).toEqual({ ours, theirs, within: true });
      tf.dispose([x, y, adv]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(base);
    },
  );

  it.each(fixture.ensemble.map((e) => [e.norm, e] as const))(
    'the %s standard ensemble (reduced budget): robust accuracy per stage within 3 points of the reference',
    (_norm, ref) => {
      const base = tf.memory().numTensors;
      const model = loadModel();
      const n = fixture.y.length;
      const x = images(n);
      const y = tf.tensor1d(fixture.y, 'int32');
      const result = autoAttackBatch(model, x, y, 0, {
        threat: threatModel({ eps: ref.eps, norm: ref.norm }),
        attacks: 'standard',
        budget: {
          apgdSteps: ref.budget.apgd_steps,
          targets: ref.budget.targets,
          fabSteps: ref.budget.fab_steps,
          squareQueries: ref.budget.square_queries,
        },
      });
      const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;
      const ours: Record<string, number> = { clean: mean(Array.from(result.cleanPredicted, (p, i) => (p === fixture.y[i] ? 1 : 0))) };
      for (const s of result.stages) ours[s.stage] = mean(s.robust);
      const theirs = Object.fromEntries(Object.entries(ref.robust).map(([k, v]) => [k, mean(v)]));
      expect(ours.clean).toBe(theirs.clean);
      // the clean flags agree example by example (same weights, same digits)
      expect(Array.from(result.cleanPredicted, (p, i) => (p === fixture.y[i] ? 1 : 0))).toEqual(ref.robust.clean);
      for (const stage of Object.keys(theirs)) {
        expect({ stage, ours: ours[stage], theirs: theirs[stage], within: Math.abs(ours[stage] - theirs[stage]) <= 0.03 }).toEqual({
          stage,
          ours: ours[stage],
          theirs: theirs[stage],
          within: true,
        });
      }
      // APGD-CE alone: the same examples fall, up to the random start (at most 2 of 100 differ)
      const differ = ref.robust['apgd-ce'].filter((v, i) => v !== result.stages[0].robust[i]).length;
      expect(differ).toBeLessThanOrEqual(2);
      tf.dispose([x, y]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(base);
    },
  );
});
