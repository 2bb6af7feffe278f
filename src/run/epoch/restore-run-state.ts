import { AtflowError } from '../../core/errors';
import type { SafetensorsTensor } from '../../models/safetensors';
import { EventDetector, type EventDetectorState } from '../../operators/detect-events';
import type { RunParts } from '../../config/build-run';
import { checkpointEpochs, type CheckpointStore } from '../../store/checkpoint-store';
import type { RunState } from './run-context';

function readF32(t: SafetensorsTensor | undefined, name: string): Float32Array {
  if (!t) throw new AtflowError('RESUME', `checkpoint has no '${name}' array`);
  return new Float32Array(t.data.slice().buffer);
}

function detectors(saved: { train?: EventDetectorState; eval?: EventDetectorState }): RunState['detectors'] {
  return {
    train: new EventDetector({ phase: 'train', ...(saved.train ? { state: saved.train } : {}) }),
    eval: new EventDetector({ phase: 'eval', ...(saved.eval ? { state: saved.eval } : {}) }),
  };
}

/** A fresh run's initial state: epoch 1, no history, detectors that have seen nothing. */
export function freshRunState(): RunState {
  return { firstEpoch: 1, history: [], best: null, detectors: detectors({}), priorWallMs: 0, trainedOn: [] };
}

/** The backends a checkpoint's run trained on (state.json `trained_on`; [] for checkpoints before it was kept). */
export function checkpointTrainedOn(json: Record<string, unknown> | null): string[] {
  const v = json?.trained_on;
  return Array.isArray(v) ? v.filter((b): b is string => typeof b === 'string') : [];
}

/**
 * The stream's initial state from the run folder's last checkpoint (or a fresh one when there is
 * none): loads the weights into the model, the momentum into the optimizer and the TE buffer into TE,
 * restores both event detectors, the epoch records and the best epoch's weights (checked against the
 * records), and drops example partitions of later epochs (the resumed stream writes them again).
 */
export function restoreRunState(store: CheckpointStore, parts: RunParts): RunState {
  const ckpt = store.load(parts.model);
  if (!ckpt) return freshRunState();
  // example partitions of later epochs are re-written by the resumed run
  store.folder.removeExampleEpochsAfter(ckpt.epoch);
  const arrays = new Map(ckpt.arrays.map((a) => [a.name, a]));
  // state.json was checked against its schema by load(): 'sgd' is there, its names and shapes agree
  const sgd = ckpt.json.sgd as { steps: number; names: string[]; shapes: number[][] };
  parts.optimizer.importState({
    steps: sgd.steps,
    momentumBuffers: sgd.names.map((name, i) => ({
      name,
      shape: sgd.shapes[i],
      values: readF32(arrays.get(`sgd/${name}`), `sgd/${name}`),
    })),
  });
  if (parts.te) parts.te.importState({ ...(ckpt.json.te as object), buffer: readF32(arrays.get('te/buffer'), 'te/buffer') } as never);
  const saved = { ...((ckpt.json.detectors ?? {}) as { train?: EventDetectorState; eval?: EventDetectorState }) };
  // checkpoints before the two detectors held one, of either phase
  const legacy = ckpt.json.detector as EventDetectorState | undefined;
  if (legacy) saved[legacy.phase] = legacy;
  return {
    firstEpoch: ckpt.epoch + 1,
    history: checkpointEpochs(ckpt.json),
    best: ckpt.best ?? null,
    detectors: detectors(saved),
    priorWallMs: Number(ckpt.json.wallMs ?? 0),
    checkpointWorkers: Number(ckpt.json.workers ?? 1),
    trainedOn: checkpointTrainedOn(ckpt.json),
  };
}
