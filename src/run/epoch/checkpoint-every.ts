import { concatMap, type MonoTypeOperatorFunction } from 'rxjs';
import { faultPoint } from '../../core/fault-injection';
import type { SafetensorsTensor } from '../../models/safetensors';
import { runWallMs, type EpochState, type RunContext } from './run-context';

function f32(name: string, values: Float32Array, shape: number[]): SafetensorsTensor {
  return { name, dtype: 'F32', shape, data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/**
 * Every `every` epochs and at the last (`checkpoint.every`): the run's state — weights, SGD momentum,
 * the TE buffer, both event detectors, the epoch records, the worker count — saved crash-safely
 * (CheckpointStore), then a 'checkpoint' event. restoreRunState reads it back into the stream's
 * initial state.
 */
export function checkpointEvery(run: RunContext, every = run.spec.checkpoint.every, last = run.spec.epochs): MonoTypeOperatorFunction<EpochState> {
  const { model, optimizer, te } = run.parts;
  return concatMap(async (s) => {
    if (s.epoch % every !== 0 && s.epoch !== last) return s;
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
          epochs: run.epochs,
          wallMs: runWallMs(run),
          sgd: { steps: sgdState.steps, names: sgdState.momentumBuffers.map((b) => b.name), shapes: sgdState.momentumBuffers.map((b) => b.shape) },
          te: teState ? teJson : null,
          detectors: { train: run.detectors.train.exportState(), eval: run.detectors.eval.exportState() },
        },
        arrays,
      },
      run.spec.checkpoint.keep === 'all',
    );
    await run.emit({ type: 'checkpoint', epoch: s.epoch, path: dir });
    faultPoint('epoch-boundary');
    return s;
  });
}
