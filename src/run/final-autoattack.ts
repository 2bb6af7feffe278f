import * as path from 'path';
import type { Model } from '../core/model';
import type { EvalProgress } from '../core/run-event';
import { deriveSeed } from '../core/rng';
import { loadWeights } from '../models/checkpoint';
import type { ThreatModel } from '../evaluation/threat-model';
import { autoAttackHeader, evaluateAutoAttack, type AutoAttackEvalOptions, type AutoAttackSummary } from './evaluate-autoattack';
import { evalFolder } from './eval-folder';

/** One checkpoint's AutoAttack summary and the folder (relative to the run folder) that holds its table. */
export type FinalAutoAttackSummary = AutoAttackSummary & { readonly folder: string };

/**
 * `eval.final.strong: "autoattack"`: the standard AutoAttack suite on the final and the best checkpoint
 * in the run's threat model (its norm and ε, the ones every other evaluation of the run uses), each
 * written to <runDir>/eval/<final|best>-standard-<norm>-eps<ε>-test-n<n>/ as `atflow eval` writes it
 * (eval-folder.ts); the summaries, with their folders, go into final_eval.json. `best`: the checkpoint's
 * best weights (CheckpointStore.bestWeightsFile, checked against the records), null when no epoch was
 * evaluated. Leaves the model at the best weights when they differ from the final ones (as the PGD-based
 * strong evaluation does); when the best epoch is the last one the weights are the same: they are
 * evaluated once, and `best` repeats the final summary.
 */
export async function finalAutoAttack(
  model: Model,
  data: { readonly x: Float32Array; readonly labels: Int32Array },
  options: {
    runDir: string;
    best: { readonly file: string; readonly epoch: number } | null;
    threat: ThreatModel;
    seed: number;
    batchSize: number;
    lastEpoch: number;
    /** Progress of each stage of each batch (the run's progress display); awaited. */
    onProgress?: (p: EvalProgress) => void | Promise<void>;
  },
): Promise<{ final: FinalAutoAttackSummary; best: FinalAutoAttackSummary | null }> {
  const n = data.labels.length;
  const index = Int32Array.from({ length: n }, (_, i) => i);
  const run = async (tag: string, label: string): Promise<FinalAutoAttackSummary> => {
    const o: AutoAttackEvalOptions = {
      threat: options.threat,
      attacks: 'standard',
      batchSize: options.batchSize,
      seed: deriveSeed(options.seed, 'final-autoattack'),
      checkpoint: label,
      split: 'test',
      resume: true,
      onProgress: options.onProgress,
      progressLabel: `autoattack ${label}`,
    };
    const dir = evalFolder(options.runDir, {
      key: { checkpoint: tag, attacks: 'standard', threat: options.threat, split: 'test', n },
      header: autoAttackHeader(o, model.numClasses, n),
      resume: true,
    });
    const summary = await evaluateAutoAttack(model, { ...data, index }, dir, o);
    return { ...summary, folder: path.relative(options.runDir, dir) };
  };
  const final = await run('final', `final (epoch ${options.lastEpoch})`);
  const best = options.best;
  if (best === null) return { final, best: null };
  if (best.epoch !== options.lastEpoch) {
    loadWeights(model, best.file);
    return { final, best: await run('best', `best (epoch ${best.epoch})`) };
  }
  return { final, best: { ...final, checkpoint: `best (epoch ${best.epoch})` } };
}
