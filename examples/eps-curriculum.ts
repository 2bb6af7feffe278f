/**
 * An ε curriculum that only code can express: the training attack's ε changes per epoch (here a linear
 * ramp to the target ε, as in curriculum adversarial training), α scaled with it. One epoch operator
 * placed before trainEpoch gives each epoch its own batch chain (attack → train) with a trainer built
 * by name through the registry at that epoch's ε. Run it with:
 *
 *   npx tsx examples/eps-curriculum.ts [outDir]
 *
 * The chain runs in this thread (the curriculum replaces the data-parallel chain of ATFLOW_WORKERS).
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { map, pipe, tap, type MonoTypeOperatorFunction } from 'rxjs';
import {
  resolveRuns,
  executeRun,
  defaultRegistry,
  parquetRunSink,
  standardEpoch,
  attack,
  train,
  type AttackedBatch,
  type NewEpoch,
  type Registry,
  type RunContext,
  type RunOutcome,
  type Trainer,
  type TrainerOptions,
} from '../src';

/**
 * Sets each epoch's batch chain to the run's trainer rebuilt with ε = `eps(epoch)` (α scaled by the
 * same factor). `onBatch` sees each attacked batch (e.g. to measure the perturbation actually used).
 */
export function epsCurriculum(
  run: RunContext,
  registry: Registry,
  eps: (epoch: number) => number,
  onBatch?: (b: AttackedBatch) => void,
): MonoTypeOperatorFunction<NewEpoch> {
  const { model, te, optimizer, lr, trainerOptions } = run.parts;
  const base = run.spec.attack;
  return map((s) => {
    const e = eps(s.epoch);
    const options: TrainerOptions = { ...trainerOptions, attack: { ...trainerOptions.attack, eps: e, alpha: (base.alpha * e) / base.eps } };
    const trainer = registry.create<Trainer, TrainerOptions>('trainer', run.spec.trainer.name, options);
    return {
      ...s,
      chain: pipe(
        attack({ model, trainer, te, seed: run.spec.seed }),
        tap((b) => onBatch?.(b)),
        train({ model, trainer, optimizer, lr }),
      ),
    };
  });
}

/** ε ramps linearly from target/epochs at epoch 1 to `target` at the last epoch. */
export const linearRamp = (target: number, epochs: number) => (epoch: number) => (target * Math.min(epoch, epochs)) / epochs;

export interface CurriculumOptions {
  readonly outDir: string;
  readonly epochs: number;
  readonly trainSize: number;
  readonly testSize: number;
  readonly eps: number;
}

/** PGD-AT on MNIST with the ε ramp; returns the run and the largest |x′ − x| of each epoch's training attacks. */
export async function runWithCurriculum(o: CurriculumOptions): Promise<{ outcome: RunOutcome; maxPerturbation: Map<number, number> }> {
  const [run] = resolveRuns({
    name: 'eps-curriculum',
    seed: 5,
    epochs: o.epochs,
    data: { source: 'mnist', trainSize: o.trainSize, testSize: o.testSize, batchSize: 32, testBatchSize: 500, augment: 'none' },
    model: { name: 'mlp' },
    trainer: { name: 'pgd-at' },
    attack: { eps: o.eps, alpha: o.eps / 4, steps: 3 },
    optimizer: { lr: 0.05, weightDecay: 0 },
    schedule: { name: 'constant' },
  });
  const registry = defaultRegistry();
  const maxPerturbation = new Map<number, number>();
  const measure = (b: AttackedBatch) => {
    const m = tf.tidy(() => tf.max(tf.abs(tf.sub(b.xAdv, b.x))).dataSync()[0]);
    maxPerturbation.set(b.epoch, Math.max(maxPerturbation.get(b.epoch) ?? 0, m));
  };
  const outcome = await executeRun(run, {
    outDir: o.outDir,
    registry,
    sinks: () => [parquetRunSink()],
    epoch: (r) => pipe(epsCurriculum(r, registry, linearRamp(o.eps, o.epochs), measure), standardEpoch(r)),
  });
  return { outcome, maxPerturbation };
}

if (require.main === module) {
  runWithCurriculum({ outDir: process.argv[2] ?? 'runs', epochs: 10, trainSize: 300, testSize: 500, eps: 0.3 }).then(
    ({ outcome, maxPerturbation }) => {
      for (const [epoch, m] of maxPerturbation) console.log(`epoch ${epoch}: max |x' - x| = ${m.toFixed(4)}`);
      console.log(`logs in ${path.resolve(outcome.runDir)}`);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
