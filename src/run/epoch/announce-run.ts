import type { BackendInfo } from '../../core/backend-info';
import { specWarnings } from '../../config/spec';
import { corruptionMask } from './mark-corrupted';
import type { RunContext, RunState } from './run-context';

function iota(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/**
 * The stream's opening events: run-start (with the restored epoch records, so every sink and observer
 * starts from the same history), the labels (true, used, corrupted), and the config's warnings.
 */
export async function announceRun(run: RunContext, start: RunState, stored: Record<string, unknown>, backend: BackendInfo): Promise<void> {
  const { parts, spec } = run;
  await run.emit({
    type: 'run-start',
    runId: run.runId,
    runDir: run.runDir,
    spec: stored,
    seed: spec.seed,
    backend,
    startedAt: new Date().toISOString(),
    epochs: spec.epochs,
    numClasses: parts.source.info.numClasses,
    trainSize: parts.planner.size('train'),
    firstEpoch: start.firstEpoch,
    // the restored history travels on run-start instead of each sink re-reading epochs.parquet, which a run
    // without the Parquet sink lacks and which that sink is still consolidating at run-start
    priorEpochs: [...start.history],
    evaluation: parts.evalProtocol,
  });
  const { labels } = parts;
  await run.emit({
    type: 'labels',
    example: iota(labels.labelsUsed.length),
    label_true: labels.labelsTrue,
    label_used: labels.labelsUsed,
    input_corrupted: corruptionMask(parts),
    noiseRate: labels.noiseRate,
  });
  for (const message of [...specWarnings(spec), ...(run.training.warning ? [run.training.warning] : [])])
    await run.emit({ type: 'warning', epoch: 0, message });
}
