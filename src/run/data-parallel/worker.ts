import { parentPort } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backend/select';
import type { Model } from '../../core/model';
import { recordBatchStats, type BatchStats } from '../../core/batch-stats';
import type { TeTensors, Trainer } from '../../algorithms/trainers/types';
import { attackHalf, gradientHalf, type GradientHalf } from '../../algorithms/train-step';
import type { ReplicaSpec } from '../../config/replica';
import type { FromWorker, InitMessage, ShareResult, StepMessage, ToWorker } from './protocol';
import { readState, variablesByName, type StateLayout } from './state-layout';

/**
 * One data-parallel worker: its own tfjs + backend (atflow's wasm kernels included), a model replica
 * and the trainer rebuilt by name by the replica builder the pool names (a module and export: the
 * run's registry with its plugins, or the built-in tables), never silently by another table. Per step
 * it loads the shared weights, runs the train step's two halves (train-step.ts) on its share, and sends
 * the gradients back.
 */
interface Replica {
  readonly model: Model;
  readonly trainer: Trainer;
  readonly layout: StateLayout;
  readonly state: SharedArrayBuffer;
  readonly variables: Map<string, tf.Variable>;
}

let replica: Replica | null = null;
const port = parentPort!;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

async function init(m: InitMessage): Promise<void> {
  await initBackend(m.replica.backend);

  const build = require(m.replica.builder.module)[m.replica.builder.export] as (spec: ReplicaSpec) => { model: Model; trainer: Trainer };
  if (typeof build !== 'function')
    throw new Error(`replica builder ${m.replica.builder.module}#${m.replica.builder.export} is not an exported function`);
  const { model, trainer } = build(m.replica);
  replica = { model, trainer, layout: m.layout, state: m.state, variables: variablesByName(model.parameters, model.buffers) };
  send({ type: 'ready', backend: tf.getBackend() });
}

function step(m: StepMessage): { result: ShareResult; transfer: ArrayBuffer[] } {
  const r = replica!;
  readState(r.state, r.layout, r.variables);
  const { model, trainer, layout } = r;
  const K = model.numClasses;
  const n = m.labels.length;
  const owned: tf.Tensor[] = [];
  let g: GradientHalf | undefined;
  try {
    const x = tf.tensor4d(m.x, m.shape, 'float32');
    owned.push(x);
    const bnStats: BatchStats[] = [];
    // the train step's two halves (train-step.ts) on this share; TE's p̂ came from the main thread
    const t0 = performance.now();
    const half = recordBatchStats(
      (s) => bnStats.push(s),
      () => attackHalf({ model, trainer, x, labels: m.labels, seed: m.seed, rowKeys: m.rowKeys, teTarget: () => m.te }),
    );
    owned.push(half.xAdv);
    const t1 = performance.now();
    const y = tf.tensor1d(m.labels, 'int32');
    owned.push(y);
    const te: TeTensors | null = m.te ? { weight: m.te.weight, target: tf.tensor2d(m.te.target, [n, K]) } : null;
    if (te) owned.push(te.target);
    g = recordBatchStats(
      (s) => bnStats.push(s),
      () => gradientHalf(model, trainer, x, half.xAdv, y, te),
    );
    const grads = g.grads;
    const gradArrays = model.parameters.map((p) => {
      const gp = grads[p.variable.name];
      return gp ? (gp.dataSync() as Float32Array).slice() : null;
    });
    const bufferArrays = layout.entries
      .filter((e) => e.role === 'buffer')
      .map((e) => (r.variables.get(e.name)!.dataSync() as Float32Array | Int32Array).slice());
    const result: ShareResult = {
      loss: g.value.dataSync()[0],
      grads: gradArrays,
      buffers: bufferArrays,
      bnStats,
      logitsNatEval: half.logitsNatEval,
      logitsNat: g.logitsNat ? (g.logitsNat.dataSync() as Float32Array).slice() : null,
      logitsAdv: g.logitsAdv.dataSync().slice() as Float32Array,
      tePenalty: g.tePenalty ? (g.tePenalty.dataSync() as Float32Array).slice() : null,
      attackMs: t1 - t0,
      gradMs: performance.now() - t1,
    };
    const transfer = [
      ...result.grads,
      ...result.buffers,
      ...bnStats.flatMap((s) => [s.mean, s.biasedVariance]),
      result.logitsNatEval,
      result.logitsAdv,
      result.logitsNat,
      result.tePenalty,
    ]
      .filter((a): a is Float32Array | Int32Array => a !== null)
      .map((a) => a.buffer as ArrayBuffer);
    return { result, transfer };
  } finally {
    g?.dispose();
    for (const t of owned) t.dispose();
  }
}

port.on('message', (m: ToWorker) => {
  void (async () => {
    const id = m.type === 'step' ? m.id : null;
    try {
      if (m.type === 'init') await init(m);
      else if (m.type === 'step') {
        const { result, transfer } = step(m);
        send({ type: 'step-done', id: m.id, result }, transfer);
      } else if (m.type === 'close') {
        replica?.model.dispose();
        replica = null;
        send({ type: 'closed', numTensors: tf.memory().numTensors });
        port.close();
      }
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown };
      send({ type: 'error', id, code: typeof err.code === 'string' ? err.code : 'WORKER', message: String(err.message ?? e) });
    }
  })();
});
