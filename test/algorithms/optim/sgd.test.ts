import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/backend/select';
import { AtflowError } from '../../../src/core/errors';
import type { NamedVariable } from '../../../src/core/model';
import { Sgd } from '../../../src/algorithms/optim/sgd';

/**
 * Reference: torch 2.13 torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01) on
 * loss_t = (t+1)·Σ (x@w + b)², x = [[1,2],[-1,0.5]], w0 = [[0.5,-1],[2,0.25]], b0 = [0.1,-0.2],
 * printed by a 15-line script (values copied below). Also checked by hand for step 1:
 * d = g + 0.01·w, buf = d, w ← w − 0.1·d: w[0][0] = 0.5 − 0.1·(8 + 0.005) = −0.3005.
 */
const TORCH = [
  {
    w: [
      [-0.3005000352859497, -0.6740000247955322],
      [0.0979999229311943, 0.4372499883174896],
    ],
    b: [-0.9401000142097473, -0.24480000138282776],
  },
  {
    w: [
      [-0.8390493988990784, -0.10307597368955612],
      [-0.6600979566574097, 0.5112127661705017],
    ],
    b: [-1.2211698293685913, -0.5262851715087891],
  },
  {
    w: [
      [0.2780425548553467, 0.07445839792490005],
      [2.9284229278564453, 0.1558716595172882],
    ],
    b: [0.9826390147209167, -0.914372444152832],
  },
];

describe.each(['cpu', 'wasm'] as const)('SGD on %s', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  // tf.variable(t) shares t's data but leaves t registered: dispose the initial value
  const variable = (t: tf.Tensor) => {
    const v = tf.variable(t);
    t.dispose();
    return v;
  };
  function params(): NamedVariable[] {
    return [
      {
        name: 'w',
        variable: variable(
          tf.tensor2d([
            [0.5, -1.0],
            [2.0, 0.25],
          ]),
        ),
      },
      { name: 'b', variable: variable(tf.tensor1d([0.1, -0.2])) },
    ];
  }

  it('matches torch.optim.SGD with momentum and coupled weight decay over 3 steps', () => {
    const base = tf.memory().numTensors;
    const ps = params();
    const opt = new Sgd(ps, { momentum: 0.9, weightDecay: 0.01 });
    const x = tf.tensor2d([
      [1, 2],
      [-1, 0.5],
    ]);
    for (let t = 0; t < 3; t++) {
      const { grads, value } = tf.variableGrads(
        () => tf.mul(tf.sum(tf.square(tf.add(tf.matMul(x, ps[0].variable), ps[1].variable))), t + 1) as tf.Scalar,
        ps.map((p) => p.variable),
      );
      opt.step(grads, 0.1);
      tf.dispose([value, ...Object.values(grads)]);
      const w = ps[0].variable.arraySync() as number[][];
      const b = ps[1].variable.arraySync() as number[];
      w.flat().forEach((v, i) => expect(v).toBeCloseTo(TORCH[t].w.flat()[i], 4));
      b.forEach((v, i) => expect(v).toBeCloseTo(TORCH[t].b[i], 4));
    }
    expect(opt.steps).toBe(3);
    x.dispose();
    opt.dispose();
    ps.forEach((p) => p.variable.dispose());
    expect(tf.memory().numTensors).toBe(base);
  });

  it('uses buf = g on the first step and buf = μ·buf + g after (hand-computed, scalar)', () => {
    const v = tf.variable(tf.scalar(1));
    const opt = new Sgd([{ name: 'v', variable: v }], { momentum: 0.5, weightDecay: 0 });
    const step = (g: number, lr: number) => {
      const gt = tf.scalar(g);
      opt.step({ [v.name]: gt }, lr);
      gt.dispose();
    };
    step(2, 0.1); // buf = 2, v = 1 − 0.2 = 0.8
    expect(v.dataSync()[0]).toBeCloseTo(0.8, 6);
    step(1, 0.1); // buf = 0.5·2 + 1 = 2, v = 0.8 − 0.2 = 0.6
    expect(v.dataSync()[0]).toBeCloseTo(0.6, 6);
    step(0, 1); // buf = 1, v = −0.4
    expect(v.dataSync()[0]).toBeCloseTo(-0.4, 6);
    opt.dispose();
    v.dispose();
  });

  it('skips parameters without a gradient (no decay), as torch', () => {
    const ps = params();
    const opt = new Sgd(ps, { momentum: 0.9, weightDecay: 0.5 });
    const g = tf.tensor1d([1, 1]);
    opt.step({ [ps[1].variable.name]: g }, 0.1);
    expect(Array.from(ps[0].variable.dataSync())).toEqual([0.5, -1, 2, 0.25]);
    // b ← b − 0.1·(1 + 0.5·b)
    const b = Array.from(ps[1].variable.dataSync());
    expect(b[0]).toBeCloseTo(0.1 - 0.1 * (1 + 0.05), 6);
    expect(b[1]).toBeCloseTo(-0.2 - 0.1 * (1 - 0.1), 6);
    g.dispose();
    opt.dispose();
    ps.forEach((p) => p.variable.dispose());
  });

  it('exports and re-imports its momentum buffers (resume gives the same next step)', () => {
    const run = (resume: boolean) => {
      const ps = params();
      let opt = new Sgd(ps, { momentum: 0.9, weightDecay: 0.01 });
      const g = [
        tf.tensor2d([
          [1, -2],
          [0.5, 3],
        ]),
        tf.tensor1d([0.25, -1]),
      ];
      const grads = { [ps[0].variable.name]: g[0], [ps[1].variable.name]: g[1] };
      opt.step(grads, 0.1);
      if (resume) {
        const state = opt.exportState();
        opt.dispose();
        opt = new Sgd(ps, { momentum: 0.9, weightDecay: 0.01 });
        opt.importState(state);
      }
      opt.step(grads, 0.1);
      const out = [...ps[0].variable.dataSync(), ...ps[1].variable.dataSync()];
      tf.dispose(g);
      opt.dispose();
      ps.forEach((p) => p.variable.dispose());
      return out;
    };
    expect(run(true)).toEqual(run(false));
  });

  it('rejects bad settings and bad state with named errors', () => {
    const ps = params();
    expect(() => new Sgd(ps, { momentum: -1 })).toThrow(/sgd.momentum/);
    const opt = new Sgd(ps);
    expect(() => opt.importState({ steps: 1, momentumBuffers: [{ name: 'nope', shape: [1], values: new Float32Array(1) }] })).toThrow(
      AtflowError,
    );
    expect(() => opt.step({}, NaN)).toThrow(/learning rate/);
    ps.forEach((p) => p.variable.dispose());
  });
});
