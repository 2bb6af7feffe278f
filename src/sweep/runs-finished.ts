import { loadRuns } from '../config/spec';
import { RunFolder } from '../store/run-folder';

/**
 * A sweep point is done when every run its config defines has `_SUCCESS` in the output root. Checked
 * without starting `atflow run` (a few seconds of start-up each), so a resubmitted sweep skips finished
 * points at once; an invalid config counts as unfinished, so that `atflow run` reports it.
 */
export function runsFinished(configPath: string, outDir: string): boolean {
  try {
    return loadRuns(configPath).every((r) => RunFolder.of(outDir, r.runId).state() === 'finished');
  } catch {
    return false;
  }
}
