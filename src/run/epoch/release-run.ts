import type { RunTraining } from '../data-parallel/run-training';
import type { Model } from '../../core/model';
import type { RunParts } from '../../config/build-run';
import type { RunEventHub } from '../event-hub';

/**
 * What a run holds that must be given back: the model, the optimizer, the training workers and the
 * event hub (its sinks). Each is adopted as soon as it exists (openRun, executeRun), and `release` —
 * called once, in executeRun's `finally` — frees whatever was adopted, however far the run got.
 */
export class RunResources {
  private parts: Pick<RunParts, 'model' | 'optimizer'> | null = null;
  private training: RunTraining | null = null;
  private hubHeld: RunEventHub | null = null;
  private released = false;

  adoptParts(parts: { readonly model: Model; readonly optimizer: RunParts['optimizer'] }): void {
    this.parts = parts;
  }

  adoptTraining(training: RunTraining): void {
    this.training = training;
  }

  adoptHub(hub: RunEventHub): RunEventHub {
    this.hubHeld = hub;
    return hub;
  }

  /** The event hub, once adopted (the runner sends a failed run's run-end through it). */
  get hub(): RunEventHub | null {
    return this.hubHeld;
  }

  /**
   * Closes the workers and the sinks and frees the model and the optimizer, each step whatever the
   * others did. When the run already failed its error is the one that propagates (a sink that also
   * fails to close must not hide it); otherwise the first cleanup error is thrown, after everything is freed.
   */
  async release(runFailed: boolean): Promise<void> {
    if (this.released) return;
    this.released = true;
    const errors: unknown[] = [];
    for (const step of [() => this.training?.close(), () => this.hubHeld?.close()]) {
      try {
        await step();
      } catch (e) {
        errors.push(e);
      }
    }
    this.parts?.model.dispose();
    this.parts?.optimizer.dispose?.();
    if (!runFailed && errors.length > 0) throw errors[0];
  }
}
