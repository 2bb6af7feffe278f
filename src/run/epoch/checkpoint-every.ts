import { concatMap, type MonoTypeOperatorFunction } from 'rxjs';
import { faultPoint } from '../../core/fault-injection';
import type { SafetensorsTensor } from '../../models/safetensors';
import { runWallMs, type EndedEpoch, type RunContext } from './run-context';

function f32(name: string, values: Float32Array, shape: number[]): SafetensorsTensor {
  return { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/**
 * The run's state after epoch `s` — weights, SGD momentum, the TE buffer, both event detectors, the
 * epoch records, the best epoch's weights, the worker count, the backends trained on — saved
 * crash-safely (CheckpointStore), then a 'checkpoint' event; returns the checkpoint folder.
 * restoreRunState reads it back into the stream's initial state. checkpointEvery calls it every
 * `every` epochs; executeRun once more when the stream ends after an epoch no checkpoint holds.
 */
export async function saveCheckpoint(run: RunContext, s: EndedEpoch): Promise<string> {
  const { model, optimizer, te } = run.parts;
  const sgdState = optimizer.exportState();
  const teState = te?.exportState();
  const arrays: SafetensorsTensor[] = sgdState.momentumBuffers.map((b) => f32(`sgd/${b.name}`, b.values, b.shape));
  if (te && teState) arrays.push(f32('te/buffer', teState.buffer, [te.numExamples, te.numClasses]));
  const { buffer: _b, ...teJson } = teState ?? ({} as Record<string, unknown>);
  const dir = run.store.save(
    model,
    {
      epoch: s.epoch,
      steps: optimizer.steps,
      json: {
        runId: run.runId,
        workers: run.training.workers,
        epochs: s.history,
        wallMs: runWallMs(run),
        trained_on: run.trainedOn,
        sgd: {
          steps: sgdState.steps,
          names: sgdState.momentumBuffers.map((b) => b.name),
          shapes: sgdState.momentumBuffers.map((b) => b.shape),
        },
        te: teState ? teJson : null,
        detectors: { train: run.detectors.train.exportState(), eval: run.detectors.eval.exportState() },
      },
      arrays,
      best: s.best,
    },
    run.spec.checkpoint.keep === 'all',
  );
  await run.emit({ type: 'checkpoint', epoch: s.epoch, path: dir });
  return dir;
}

/** Every `every` epochs and at the last (`checkpoint.every`): saveCheckpoint, the folder noted in the state. */
export function checkpointEvery(
  run: RunContext,
  every = run.spec.checkpoint.every,
  last = run.spec.epochs,
): MonoTypeOperatorFunction<EndedEpoch> {
  return concatMap(async (s) => {
    if (s.epoch % every !== 0 && s.epoch !== last) return s;
    const checkpoint = await saveCheckpoint(run, s);
    faultPoint('epoch-boundary');
    return { ...s, checkpoint };
  });
}
