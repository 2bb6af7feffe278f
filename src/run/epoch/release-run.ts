import type { RunTraining } from '../data-parallel/run-training';
import type { Model } from '../../core/model';
import type { RunParts } from '../../config/build-run';
import type { RunEventHub } from '../event-hub';
import type { RunFolder } from '../../store/run-folder';

/**
 * What a run holds that must be given back: the model, the optimizer, the training workers, the
 * event hub (its sinks) and the run folder's lock. Each is adopted as soon as it exists (openRun,
 * executeRun), and `release` — called once, in executeRun's `finally` — frees whatever was adopted,
 * however far the run got; the lock last of all.
 */
export class RunResources {
  private parts: Pick<RunParts, 'model' | 'optimizer'> | null = null;
  private training: RunTraining | null = null;
  private hubHeld: RunEventHub | null = null;
  private folderHeld: RunFolder | null = null;
  private released = false;

  adoptParts(parts: { readonly model: Model; readonly optimizer: RunParts['optimizer'] }): void {
    this.parts = parts;
  }

  adoptTraining(training: RunTraining): void {
    this.training = training;
  }

  /** The run folder, its lock taken (openRunFolder). */
  adoptFolder(folder: RunFolder): RunFolder {
    this.folderHeld = folder;
    return folder;
  }

  adoptHub(hub: RunEventHub): RunEventHub {
    this.hubHeld = hub;
    return hub;
  }

  /** The run folder, once adopted (its lock held until release). */
  get folder(): RunFolder | null {
    return this.folderHeld;
  }

  /** The event hub, once adopted (the runner sends a failed run's run-end through it). */
  get hub(): RunEventHub | null {
    return this.hubHeld;
  }

  /**
   * Closes the workers and the sinks and frees the model and the optimizer, each step whatever the
   * others did. When the run already failed its error is the one that propagates (a sink that also
   * fails to close must not hide it); otherwise the first cleanup error is thrown, after everything is freed.
   * `underLock` runs last while the folder's lock is still held, and only when everything before went
   * well (executeRun writes `_SUCCESS` there); then the lock is released, whatever happened.
   */
  async release(runFailed: boolean, underLock?: (folder: RunFolder) => void): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
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
      if (!runFailed && underLock && this.folderHeld) underLock(this.folderHeld);
    } finally {
      this.folderHeld?.unlock();
    }
  }
}
