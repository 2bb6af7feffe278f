import type { RunTraining } from '../data-parallel/run-training';
import type { Model } from '../../core/model';
import type { RunParts } from '../../config/build-run';
import type { RunEventHub } from '../event-hub';

/**
 * Closes the workers and the sinks and frees the model and the optimizer, each step whatever the
 * others did. When the run already failed its error is the one that propagates (a sink that also fails
 * to close must not hide it); otherwise the first cleanup error is thrown, after everything is freed.
 */
export async function releaseRun(training: RunTraining | undefined, hub: RunEventHub | null, model: Model, optimizer: RunParts['optimizer'], runFailed: boolean): Promise<void> {
  const errors: unknown[] = [];
  for (const step of [() => training?.close(), () => hub?.close()]) {
    try {
      await step();
    } catch (e) {
      errors.push(e);
    }
  }
  model.dispose();
  optimizer.dispose?.();
  if (!runFailed && errors.length > 0) throw errors[0];
}
