import { AtflowError } from '../core/errors';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import type { RunSpec } from './spec';
import type { Kind, Registry } from './registry';
import { createModelByName, replicaRecipe } from './replica';
import type { ReplicaRecipe } from './replica';
import type { Source } from '../data/source';
import { corruptInputs } from '../data/input-corruption';
import { assignLabels, type LabelAssignment } from '../data/label-noise';
import type { BatchPlanner, PlannerOptions } from '../data/batch-plans';
import type { Augmentation, AugmentationContext } from '../operators/augment';
import type { Trainer, TrainerOptions } from '../algorithms/trainers/types';
import type { EnsembleOptions, TeOptions, TemporalEnsemble } from '../algorithms/trainers/te';
import type { OptimizerOptions, Sgd } from '../algorithms/optim/sgd';
import { configureRun } from './kinds';
import type { LrSchedule } from '../algorithms/schedules/lr-schedule';
import type { EvalProtocol } from '../core/eval-protocol';
import { evalProtocolOf, threatModel, type ThreatModel } from '../evaluation/threat-model';

/** Everything a run is made of, built from a spec by name through the registry. */
export interface RunParts {
  readonly source: Source;
  /** Training-split indices whose inputs were corrupted (empty without input corruption). */
  readonly corrupted: Int32Array;
  readonly labels: LabelAssignment;
  readonly planner: BatchPlanner;
  /** The training batches' augmentation (the registry's 'augmentation' entry the config names). */
  readonly augment: Augmentation;
  readonly model: Model;
  readonly trainer: Trainer;
  /** What `trainer` was built with (data-parallel workers rebuild it from these). */
  readonly trainerOptions: TrainerOptions;
  readonly te: TemporalEnsemble | null;
  readonly optimizer: Sgd;
  readonly lr: LrSchedule;
  /** How data-parallel workers rebuild `model` and `trainer`: the registry's plugins (startRunTraining's `replica`). */
  readonly replica: ReplicaRecipe;
  /** The run's threat model (threatModelOf), built once: every evaluation of the run attacks in it. */
  readonly threat: ThreatModel;
  /** What the per-epoch evaluation does, for spec.json, summary.json, the summary table and the report. */
  readonly evalProtocol: EvalProtocol;
}

/**
 * `eval.attack.name`: the per-epoch evaluation runs PGD, so a name other than 'pgd' is refused (an
 * unknown one with the registry's error).
 */
function checkEvalAttackName(name: string | undefined, registry: Registry): void {
  const field = 'eval.attack.name';
  if (name === undefined || name === 'pgd') return;
  registry.factory('attack', name, field);
  throw new AtflowError(
    'CONFIG',
    `${field}: '${name}' is not used for per-epoch evaluation, which runs ` +
      `PGD; use 'pgd' and set norm / steps / alpha / randomStart (FGSM = ` +
      `steps 1, alpha = eps, randomStart 'none')`,
    { field, value: name },
  );
}

/**
 * Builds a run's parts from a spec, every one by name through the registry: each entry the spec names is
 * checked first (configureRun: the name registered, every field one the entry reads), so a bad config
 * fails here, naming the field, before any data is read.
 */
export function buildRun(spec: RunSpec, registry: Registry): RunParts {
  const seed = spec.seed;
  const chosen = configureRun(spec, registry);
  checkEvalAttackName(spec.eval.attack === 'inherit' ? undefined : spec.eval.attack.name, registry);
  // built and checked before any data is read
  const threat = threatModelOf(spec);
  const sourceChoice = chosen.get('source');
  let source = registry.create<Source, Record<string, unknown>>('source', sourceChoice.name, {
    ...sourceChoice.options,
    ...(spec.data.trainSize !== undefined ? { trainSize: spec.data.trainSize } : {}),
    ...(spec.data.testSize !== undefined ? { testSize: spec.data.testSize } : {}),
    ...(spec.data.valSize ? { valSize: spec.data.valSize } : {}),
    seed: deriveSeed(seed, 'split'),
  });
  let corrupted: Int32Array = new Int32Array(0);
  if (spec.inputCorruption.kind !== 'none' && spec.inputCorruption.rate > 0) {
    const c = corruptInputs(source, {
      kind: spec.inputCorruption.kind,
      rate: spec.inputCorruption.rate,
      seed: deriveSeed(seed, 'input-corruption'),
    });
    source = c.source;
    corrupted = c.corrupted;
  }
  const info = source.info;
  const trainStorage = source.split('train');
  // keyed by sourceIndex: an image keeps its noisy label whatever valSize / trainSize / subset carve
  const labels = assignLabels(
    spec.labelNoise.kind,
    spec.labelNoise.rate,
    deriveSeed(seed, 'label-noise'),
    trainStorage.labels,
    info.numClasses,
    trainStorage.sourceIndex,
  );
  const planner = registry.create<BatchPlanner, PlannerOptions>('planner', chosen.get('planner').name, {
    sizes: info.sizes,
    batchSize: spec.data.batchSize,
    evalBatchSize: spec.data.testBatchSize,
    seed,
  });
  const augmentChoice = chosen.get('augmentation');
  const augment = registry.create<Augmentation, AugmentationContext>('augmentation', augmentChoice.name, {
    ...augmentChoice.options,
    seed: deriveSeed(seed, 'augment'),
    datasetDefault: info.defaultAugment,
  });
  const modelOptions = {
    ...chosen.get('model').options,
    numClasses: info.numClasses,
    inputShape: [...info.imageShape] as [number, number, number],
    seed: deriveSeed(seed, 'model-init'),
  };
  const model = createModelByName(registry, spec.model.name, modelOptions);
  const teChoice = spec.trainer.te ? chosen.get<TeOptions>('ensemble') : null;
  const te = teChoice
    ? registry.create<TemporalEnsemble, EnsembleOptions>('ensemble', teChoice.name, {
        ...teChoice.options,
        numExamples: info.sizes.train ?? 0,
        numClasses: info.numClasses,
      })
    : null;
  // the trainer gets its own options, the training attack as the config wrote it (name included), and TE's settings
  const trainerOptions: TrainerOptions = { ...chosen.get('trainer').options, attack: spec.attack, te: spec.trainer.te };
  const trainer = registry.create<Trainer, TrainerOptions>('trainer', spec.trainer.name, trainerOptions);
  const optimizerChoice = chosen.get('optimizer');
  const optimizer = registry.create<Sgd, OptimizerOptions>('optimizer', optimizerChoice.name, {
    ...optimizerChoice.options,
    parameters: model.parameters,
  });
  const scheduleChoice = chosen.get<Record<string, unknown>>('schedule');
  const lr = registry.create<LrSchedule, unknown>('schedule', scheduleChoice.name, {
    ...scheduleChoice.options,
    lr: spec.optimizer.lr,
    tMax: spec.epochs,
  });
  const trainSize = info.sizes.train ?? 0;
  const evalProtocol = evalProtocolOf(threat, {
    inherited: spec.eval.attack === 'inherit',
    every: spec.eval.every,
    n_test: info.sizes.test ?? 0,
    n_val: info.sizes.val ?? 0,
    n_train: spec.eval.train ? Math.min(trainSize, spec.eval.trainSubset ?? trainSize) : 0,
  });
  const objectives = spec.attack.objective !== undefined ? [spec.attack.objective] : ['ce', 'trades-kl'];
  const replica = replicaRecipe(registry, [
    ['model', spec.model.name],
    ['trainer', spec.trainer.name],
    ['attack', spec.attack.name],
    ...objectives.map((o) => ['objective', o] as [Kind, string]),
  ]);
  return { source, corrupted, labels, planner, augment, model, trainer, trainerOptions, te, optimizer, lr, replica, threat, evalProtocol };
}

/**
 * The run's threat model, from the config: `eval.attack` over the training attack (threatModel says
 * how: by default PGD-10 at the training norm and ε, α = ε/4, one restart, start uniform (ℓ∞) or
 * 0.001·N(0, I) (ℓ2), unclamped; `"inherit"` takes the training attack's norm, ε, α, steps and restarts).
 */
export function threatModelOf(spec: RunSpec): ThreatModel {
  const t = spec.attack;
  return threatModel(spec.eval.attack, {
    base: { norm: t.norm, eps: t.eps, alpha: t.alpha, steps: t.steps, restarts: t.restarts },
    origin: 'config',
  });
}
