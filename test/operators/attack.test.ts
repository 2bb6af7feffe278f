import * as tf from '@tensorflow/tfjs';
import { firstValueFrom, of, toArray } from 'rxjs';
import { initBackend } from '../../src/backend/select';
import type { LabeledBatch } from '../../src/core/batch';
import { attack } from '../../src/operators/attack';
import { pgdAtTrainer } from '../../src/algorithms/trainers/pgd-at';
import { TemporalEnsemble } from '../../src/algorithms/trainers/te';
import type { Trainer } from '../../src/algorithms/trainers/types';
import { fixedWeights, naiveForward, softmax, tinyMlp } from '../algorithms/trainers/tiny-mlp';

const SHAPE: [number, number, number] = [2, 2, 1];
const W = fixedWeights(4, 5, 3, 2);
const X = [
  [0.1, 0.9, 0.4, 0.6],
  [0.8, 0.2, 0.5, 0.3],
];

function batch(epoch: number, step = 0): LabeledBatch {
  return {
    stage: 'labeled',
    split: 'train',
    epoch,
    step,
    indices: new Int32Array([3, 1]),
    x: tf.tensor4d(X.flat(), [2, ...SHAPE]),
    labelsTrue: new Int32Array([0, 2]),
    labelsUsed: new Int32Array([1, 2]),
  };
}

describe.each(['cpu', 'wasm'] as const)('attack operator on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('updates TE from the eval-mode softmax of the clean batch BEFORE the attack, from the start epoch', async () => {
    const model = tinyMlp(W, SHAPE);
    const te = new TemporalEnsemble(5, 3, { start: 2, end: 4, weight: 10, momentum: 0.9 });
    const inner = pgdAtTrainer({ attack: { eps: 0.1, alpha: 0.05, steps: 2 }, te: {} });
    const seen: { buffer: number[]; target: number[] | null; weight: number | null; callsBefore: number }[] = [];
    const spy: Trainer = {
      ...inner,
      attack: (input) => {
        seen.push({
          buffer: Array.from(te.buffer),
          target: input.te ? Array.from(input.te.target.dataSync()) : null,
          weight: input.te ? input.te.weight : null,
          callsBefore: model.calls.length,
        });
        return inner.attack(input);
      },
    };
    const out = await firstValueFrom(of(batch(1), batch(2, 1)).pipe(attack({ model, trainer: spy, te, seed: 5 }), toArray()));

    // epoch 1 < start: no EMA update, no TE input
    expect(seen[0].target).toBeNull();
    expect(seen[0].buffer.every((v) => v === 0)).toBe(true);
    expect(out[0].te).toBeNull();
    // epoch 2: the rows of examples 3 and 1 already hold 0.1·q when the attack starts; p̂ = q
    const q = naiveForward(W, X).logits.map(softmax);
    for (const [i, idx] of [3, 1].entries()) {
      for (let k = 0; k < 3; k++) {
        expect(seen[1].buffer[idx * 3 + k]).toBeCloseTo(0.1 * q[i][k], 6);
        expect(seen[1].target![i * 3 + k]).toBeCloseTo(q[i][k], 5);
        expect(out[1].te!.target[i * 3 + k]).toBeCloseTo(q[i][k], 5);
      }
    }
    expect(seen[1].weight).toBeCloseTo(10 * Math.exp(-5), 10);
    // the first model call of each batch is the eval-mode clean forward, before any attack call
    expect(model.calls[0]).toEqual({ mode: 'eval', batch: 2 });
    expect(seen[0].callsBefore).toBe(1);
    expect(model.calls.every((c) => c.mode === 'eval')).toBe(true);
    // the eval logits travel with the batch; x′ is in the ε-ball and [0, 1]
    const z = naiveForward(W, X).logits.flat();
    Array.from(out[1].logitsNatEval).forEach((v, i) => expect(v).toBeCloseTo(z[i], 5));
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(out[1].xAdv, out[1].x))).dataSync()[0]);
    expect(diff).toBeLessThanOrEqual(0.1 + 1e-6);
    for (const b of out) tf.dispose([b.x, b.xAdv]);
    model.dispose();
  });

  it('disposes the batch when the trainer throws', async () => {
    const model = tinyMlp(W, SHAPE);
    const base = tf.memory().numTensors;
    const failing: Trainer = {
      ...pgdAtTrainer(),
      attack: () => {
        throw new Error('boom');
      },
    };
    await expect(firstValueFrom(of(batch(1)).pipe(attack({ model, trainer: failing, seed: 1 })))).rejects.toThrow('boom');
    expect(tf.memory().numTensors).toBe(base);
    model.dispose();
  });
});
