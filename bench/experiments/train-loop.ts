/**
 * A compact epoch loop over atflow's operators for the experiment scripts in this folder
 * (the full runner with logging, checkpoints and resume is src/run; this one only prints curves):
 *   per epoch: plans → loadBatches → randomizeLabels → [augment] → attack → train,
 *   then evaluate (eval mode, clean + PGD) on the training set against the labels trained on and on the test set.
 */
import { lastValueFrom, reduce } from 'rxjs';
import type { Model } from '../../src/core/model';
import { attack } from '../../src/operators/attack';
import { evaluatePass, type EvalSummary } from '../../src/evaluation/evaluate';
import type { ThreatModel } from '../../src/evaluation/threat-model';
import { loadBatches } from '../../src/operators/load-batches';
import { Sgd } from '../../src/algorithms/optim/sgd';
import { randomizeLabels } from '../../src/operators/randomize-labels';
import type { LrSchedule } from '../../src/algorithms/schedules/lr-schedule';
import { train } from '../../src/operators/train';
import type { TemporalEnsemble } from '../../src/algorithms/trainers/te';
import type { Trainer } from '../../src/algorithms/trainers/types';
import { BatchPlanner } from '../../src/data/batch-plans';
import type { LabelAssignment } from '../../src/data/label-noise';
import type { Source } from '../../src/data/source';

export interface LoopOptions {
  readonly source: Source;
  readonly model: Model;
  readonly trainer: Trainer;
  readonly te?: TemporalEnsemble | null;
  readonly labels: LabelAssignment | null;
  readonly epochs: number;
  readonly batchSize: number;
  readonly lr: LrSchedule;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly seed: number;
  readonly evalAttack: ThreatModel;
  readonly evalTrain: boolean;
  /** Evaluate every k epochs (and at the last). Default 1. */
  readonly evalEvery?: number;
  readonly evalTest: boolean;
  /** Stop early once the eval-mode robust training accuracy reaches this. */
  readonly stopAtTrainRobustAcc?: number;
}

export interface EpochRow {
  readonly epoch: number;
  readonly lr: number;
  readonly loss: number;
  readonly gradNormSq: number;
  /** train-phase (during the update, train-mode f(x′)) adversarial accuracy against the labels used */
  readonly trainPhaseAdvAcc: number;
  readonly train?: EvalSummary;
  readonly test?: EvalSummary;
  readonly seconds: number;
}

export async function runLoop(o: LoopOptions, onEpoch: (row: EpochRow) => void): Promise<EpochRow[]> {
  const planner = new BatchPlanner(o.source.info.sizes, { batchSize: o.batchSize, evalBatchSize: 250, seed: o.seed });
  const optimizer = new Sgd(o.model.parameters, { momentum: o.momentum, weightDecay: o.weightDecay });
  const rows: EpochRow[] = [];
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const t0 = performance.now();
      const acc = await lastValueFrom(
        planner.plans$('train', epoch).pipe(
          loadBatches(o.source),
          randomizeLabels(o.labels),
          attack({ model: o.model, trainer: o.trainer, te: o.te, seed: o.seed }),
          train({ model: o.model, trainer: o.trainer, optimizer, lr: o.lr }),
          reduce(
            (a, b) => {
              a.loss += b.record.loss;
              a.norm += b.record.grad_norm_sq;
              a.steps++;
              a.correct += b.columns.correct_adv.reduce((s, v) => s + v, 0);
              a.n += b.columns.example.length;
              return a;
            },
            { loss: 0, norm: 0, steps: 0, correct: 0, n: 0 },
          ),
        ),
      );
      const evalOpts = { model: o.model, seed: o.seed, attack: o.evalAttack, epoch };
      const evalNow = epoch % (o.evalEvery ?? 1) === 0 || epoch === o.epochs;
      const trainEval =
        o.evalTrain && evalNow
          ? await evaluatePass(planner.plans$('train', epoch).pipe(loadBatches(o.source), randomizeLabels(o.labels)), evalOpts)
          : undefined;
      const testEval =
        o.evalTest && evalNow ? await evaluatePass(planner.plans$('test', epoch).pipe(loadBatches(o.source)), evalOpts) : undefined;
      const row: EpochRow = {
        epoch,
        lr: o.lr(epoch),
        loss: acc.loss / acc.steps,
        gradNormSq: acc.norm / acc.steps,
        trainPhaseAdvAcc: acc.correct / acc.n,
        train: trainEval,
        test: testEval,
        seconds: (performance.now() - t0) / 1000,
      };
      rows.push(row);
      onEpoch(row);
      if (o.stopAtTrainRobustAcc !== undefined && trainEval && trainEval.robustAcc >= o.stopAtTrainRobustAcc) break;
    }
  } finally {
    optimizer.dispose();
  }
  return rows;
}

export function formatRow(r: EpochRow): string {
  const pct = (v: number | undefined) => (v === undefined ? '   -  ' : `${(100 * v).toFixed(1).padStart(5)}%`);
  return [
    `epoch ${String(r.epoch).padStart(3)}`,
    `lr ${r.lr.toPrecision(3)}`,
    `loss ${r.loss.toFixed(4)}`,
    `|g|² ${r.gradNormSq.toExponential(2)}`,
    `train-phase adv ${pct(r.trainPhaseAdvAcc)}`,
    `train clean ${pct(r.train?.cleanAcc)} robust ${pct(r.train?.robustAcc)}`,
    `test clean ${pct(r.test?.cleanAcc)} robust ${pct(r.test?.robustAcc)}`,
    `${r.seconds.toFixed(1)}s`,
  ].join(' | ');
}
