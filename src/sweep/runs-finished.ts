import { loadRuns } from '../config/spec';
import { RunFolder } from '../store/run-folder';

/**
 * A sweep point is done when every run its config defines has `_SUCCESS` in the output root. Checked
 * without starting `atflow run` (a few seconds of start-up each), so a resubmitted sweep skips finished
 * points at once; an invalid config counts as unfinished, so that `atflow run` reports it.
 */
/**
 * Why a sweep point's runs are being written right now by another process (a live run-folder lock: a
 * double-submitted array task), or null. The duplicate task then stops without touching the point's
 * status, which the live one keeps.
 */
export function runsBeingWritten(configPath: string, outDir: string): string | null {
  try {
    for (const r of loadRuns(configPath)) {
      const lock = RunFolder.of(outDir, r.runId).lockState();
      if (lock?.alive) return `${r.runId}: ${lock.why}`;
    }
  } catch {
    // an invalid config or folder: `atflow run` reports it
  }
  return null;
}

export function runsFinished(configPath: string, outDir: string): boolean {
  try {
    return loadRuns(configPath).every((r) => RunFolder.of(outDir, r.runId).state() === 'finished');
  } catch {
    return false;
  }
}
