import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, tensorflowAvailable } from '../../src/backend/select';
import { createModel, loadWeights } from '../../src/models';
import { threatModel } from '../../src/evaluation/threat-model';
import { autoAttackBatch, predictWithMargin, resolveAutoAttack } from '../../src/evaluation/autoattack';

/**
 * robustness.parquet's `<stage>_margin` / `<stage>_pred` mean the same for every stage: the margin
 * z_y − max_{j≠y} z_j at the stage's best attempt (the lowest-margin point it evaluated inside the
 * threat model, x included) and the class there. Before, the stages that return x for the examples they
 * do not fool (APGD-T, FAB-T, Square) reported the clean margin for them, and APGD-CE the margin at its
 * highest-loss iterate. On the committed AutoAttack fixture (cnn-small on 10×10 digits, 100 digits).
 */
const FIXTURES = path.join(__dirname, '..', 'algorithms', 'attacks', 'fixtures');
const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'autoattack-ci.json'), 'utf8')) as {
  model: { name: string; inputShape: [number, number, number]; numClasses: number };
  x_bytes: number[];
  y: number[];
};

beforeAll(async () => {
  await initBackend(tensorflowAvailable() ? 'tensorflow' : 'wasm');
});

describe('AutoAttack stage margins', () => {
  it.each([
    ['linf', 0.1],
    ['l2', 0.5],
  ] as const)(
    '%s: every stage reports its best attempt (≤ the clean margin, < 0 exactly where it fooled), and the survivors of every stage got closer than x',
    (norm, eps) => {
      const base = tf.memory().numTensors;
      const model = createModel(fixture.model.name, {
        numClasses: fixture.model.numClasses,
        inputShape: fixture.model.inputShape,
        seed: 0,
      });
      loadWeights(model, path.join(FIXTURES, 'autoattack-ci.safetensors'));
      const n = fixture.y.length;
      const x = tf.tensor4d(
        Float32Array.from(fixture.x_bytes, (b) => b / 255),
        [n, ...fixture.model.inputShape],
      );
      const y = tf.tensor1d(fixture.y, 'int32');
      const r = autoAttackBatch(model, x, y, 0, {
        threat: threatModel({ eps, norm }),
        attacks: 'standard',
        budget: { apgdSteps: 20, targets: 3, fabSteps: 20, squareQueries: 300 },
      });
      // the clean margins, computed independently of the ensemble
      const clean = predictWithMargin(model, x, y);
      let before: Uint8Array = Uint8Array.from(clean.predicted, (p, i) => (p === fixture.y[i] ? 1 : 0));
      for (const s of r.stages) {
        let closer = 0;
        let survivors = 0;
        for (let i = 0; i < n; i++) {
          if (!before[i]) {
            expect({ stage: s.stage, i, pred: s.predicted[i], margin: s.margin[i] }).toEqual({ stage: s.stage, i, pred: -1, margin: NaN });
            continue;
          }
          expect({ stage: s.stage, i, atMostClean: s.margin[i] <= clean.margin[i] }).toEqual({ stage: s.stage, i, atMostClean: true });
          // fooled ⇔ the best attempt is misclassified ⇔ its margin is negative
          expect({
            stage: s.stage,
            i,
            fooled: !s.robust[i],
            misclassified: s.predicted[i] !== fixture.y[i],
            negative: s.margin[i] < 0,
          }).toEqual({
            stage: s.stage,
            i,
            fooled: !s.robust[i],
            misclassified: !s.robust[i],
            negative: !s.robust[i],
          });
          if (s.robust[i]) {
            survivors++;
            if (s.margin[i] < clean.margin[i] - 1e-3) closer++;
          }
        }
        // the stage's attempts on the points it did not fool are reported, not x's margin (FAB-T's iterates
        // approach the boundary from outside the ball, so for its survivors x is usually the best point in it)
        if (survivors > 0 && s.stage !== 'fab-t')
          expect({ stage: s.stage, survivors, closer: closer > 0 }).toEqual({ stage: s.stage, survivors, closer: true });
        before = s.robust;
      }
      expect(r.stages.map((s) => s.stage)).toEqual(resolveAutoAttack({ threat: threatModel({ eps, norm }) }, 10).stages);
      tf.dispose([x, y]);
      model.dispose();
      expect(tf.memory().numTensors).toBe(base);
    },
  );
});
