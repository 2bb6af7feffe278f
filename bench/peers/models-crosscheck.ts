/**
 * Dev check (not CI), step 2 of bench/peers/models-crosscheck.py: loads PyTorch's weights into atflow's
 * models, compares eval logits, train-mode logits and the BN state after that train step with PyTorch's,
 * and saves atflow's state as <id>.atflow.safetensors for the script's `check` step.
 *   npx tsx bench/peers/models-crosscheck.ts DIR [cpu|wasm|tensorflow]
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { createModel, loadWeights, saveWeights, stateDictOf } from '../../src/models';
import { countParameters } from '../../src/core/model';
import { readSafetensorsFile, type SafetensorsTensor } from '../../src/models/safetensors';

function floats(t: SafetensorsTensor): Float32Array {
  return new Float32Array(new Uint8Array(t.data).buffer);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  const backend = await initBackend((process.argv[3] as 'cpu' | 'wasm' | undefined) ?? 'wasm');
  const manifest = JSON.parse(fs.readFileSync(`${dir}/manifest.json`, 'utf8')) as {
    id: string;
    name: string;
    classes: number;
    inputShape: [number, number, number];
    parameters: number;
  }[];
  const results = [];
  for (const m of manifest) {
    const model = createModel(m.name, { numClasses: m.classes, inputShape: m.inputShape, seed: 123 });
    loadWeights(model, `${dir}/${m.id}.weights.safetensors`);
    const io = readSafetensorsFile(`${dir}/${m.id}.io.safetensors`).tensors;
    const xT = io.get('x_nhwc')!;
    const x = tf.tensor4d(floats(xT), xT.shape as [number, number, number, number]);
    const t0 = Date.now();
    const evalLogits = tf.tidy(() => model.apply(x, 'eval').dataSync());
    const trainLogits = tf.tidy(() => model.apply(x, 'train').dataSync());
    const ms = Date.now() - t0;
    let stateDiff = 0;
    let countersEqual = true;
    for (const e of stateDictOf(model)) {
      const ref = io.get(`after.${e.name}`)!;
      if (e.dtype === 'I64') countersEqual &&= Number(new BigInt64Array(new Uint8Array(ref.data).buffer)[0]) === e.values[0];
      else stateDiff = Math.max(stateDiff, maxAbsDiff(e.values, floats(ref)));
    }
    const scale = Math.max(...Array.from(floats(io.get('logits_eval')!), Math.abs));
    const r = {
      model: m.id,
      backend: backend.name,
      parameters: countParameters(model),
      parametersPyTorch: m.parameters,
      evalMaxAbsDiff: maxAbsDiff(evalLogits, floats(io.get('logits_eval')!)),
      trainMaxAbsDiff: maxAbsDiff(trainLogits, floats(io.get('logits_train')!)),
      logitScale: scale,
      stateAfterTrainMaxAbsDiff: stateDiff,
      numBatchesTrackedEqual: countersEqual,
      forwardMs: ms,
    };
    results.push(r);
    console.log(JSON.stringify(r));
    saveWeights(model, `${dir}/${m.id}.atflow.safetensors`);
    x.dispose();
    model.dispose();
  }
  fs.writeFileSync(`${dir}/atflow-${backend.name}.json`, JSON.stringify(results, null, 2));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
