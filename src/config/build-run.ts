import { AtflowError, unknownName } from '../core/errors';
import type { Model } from '../core/model';
import { deriveSeed } from '../core/rng';
import type { RunSpec } from './spec';
import type { Kind, Registry } from './registry';
import { createModelByName, replicaRecipe } from './replica';
import type { ReplicaRecipe } from './replica';
import type { Source } from '../data/source';
import { corruptInputs } from '../data/input-corruption';
import { assignLabels, type LabelAssignment } from '../data/label-noise';
import { BatchPlanner } from '../data/batch-plans';
import { defaultAugmentOptions, type AugmentOptions } from '../operators/augment';
import type { Trainer, TrainerOptions } from '../algorithms/trainers/types';
import { TemporalEnsemble } from '../algorithms/trainers/te';
import { TRAINER_SETTINGS, type TrainerSetting } from '../algorithms/trainers';
import { Sgd } from '../algorithms/optim/sgd';
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
  readonly augment: Required<AugmentOptions>;
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
 * `attack.name` picks the trainer's inner attack through the registry (the trainer refuses one that
 * cannot maximise its objective); an unknown name fails here, before any data is read. The clean
 * trainer runs no attack, so a name there would be silently ignored: refuse it.
 * `eval.attack.name`: the per-epoch evaluation runs PGD, so a name other than 'pgd' is refused.
 */
function checkAttackName(field: string, name: string | undefined, registry: Registry, trainer: string | null): void {
  if (name === undefined || name === 'pgd') return;
  if (!registry.has('attack', name)) {
    const e = unknownName('attack', name, registry.list('attack'));
    throw new AtflowError(e.code, `${field}: ${e.message}`, e.details);
  }
  if (trainer === 'standard') {
    throw new AtflowError('CONFIG', `${field}: trainer 'standard' runs no attack, so '${name}' would be ignored; remove attack.name or pick an adversarial trainer (pgd-at, trades, mart)`, { field, value: name });
  }
  if (trainer !== null) return;
  throw new AtflowError(
    'CONFIG',
    `${field}: '${name}' is not used for per-epoch evaluation, which runs PGD; use 'pgd' and set norm / steps / alpha / randomStart (FGSM = steps 1, alpha = eps, randomStart 'none')`,
    { field, value: name },
  );
}

/**
 * `trainer.beta` / `trainer.te.penaltyOn` given to a built-in trainer that does not read them (PGD-AT,
 * standard) would change nothing: refuse it, naming the field, the trainer and the ones that read it.
 * Trainers registered by the user declare nothing and are not checked.
 */
function checkTrainerSettings(spec: RunSpec): void {
  const name = spec.trainer.name;
  const reads = TRAINER_SETTINGS[name];
  if (!reads) return;
  const given: [TrainerSetting, string, unknown][] = [
    ['beta', 'trainer.beta', spec.trainer.beta],
    ['penaltyOn', 'trainer.te.penaltyOn', spec.trainer.te?.penaltyOn],
  ];
  for (const [setting, field, value] of given) {
    if (value === undefined || reads.includes(setting)) continue;
    const readers = Object.keys(TRAINER_SETTINGS).filter((t) => TRAINER_SETTINGS[t].includes(setting));
    throw new AtflowError('CONFIG', `${field}: trainer '${name}' ignores ${setting} (got ${JSON.stringify(value)}); only ${readers.map((t) => `'${t}'`).join(' and ')} read it: remove the field or change trainer.name`, {
      field,
      value,
      trainer: name,
      acceptedBy: readers,
    });
  }
}

export function buildRun(spec: RunSpec, registry: Registry): RunParts {
  const seed = spec.seed;
  checkTrainerSettings(spec);
  checkAttackName('attack.name', spec.attack.name, registry, spec.trainer.name);
  if (spec.trainer.name === 'standard' && spec.attack.objective !== undefined) {
    throw new AtflowError('CONFIG', `attack.objective: trainer 'standard' runs no attack, so '${spec.attack.objective}' would be ignored; remove it or pick an adversarial trainer (pgd-at, trades, mart)`, {
      field: 'attack.objective',
      value: spec.attack.objective,
    });
  }
  checkAttackName('eval.attack.name', spec.eval.attack === 'inherit' ? undefined : spec.eval.attack.name, registry, null);
  // built and checked before any data is read
  const threat = threatModelOf(spec);
  let source = registry.create<Source, Record<string, unknown>>('source', spec.data.source, {
    ...spec.data.options,
    ...(spec.data.trainSize !== undefined ? { trainSize: spec.data.trainSize } : {}),
    ...(spec.data.testSize !== undefined ? { testSize: spec.data.testSize } : {}),
    ...(spec.data.valSize ? { valSize: spec.data.valSize } : {}),
    seed: deriveSeed(seed, 'split'),
  });
  let corrupted: Int32Array = new Int32Array(0);
  if (spec.inputCorruption.kind !== 'none' && spec.inputCorruption.rate > 0) {
    const c = corruptInputs(source, { kind: spec.inputCorruption.kind, rate: spec.inputCorruption.rate, seed: deriveSeed(seed, 'input-corruption') });
    source = c.source;
    corrupted = c.corrupted;
  }
  const info = source.info;
  const trainStorage = source.split('train');
  // keyed by sourceIndex: an image keeps its noisy label whatever valSize / trainSize / subset carve
  const labels = assignLabels(spec.labelNoise.kind, spec.labelNoise.rate, deriveSeed(seed, 'label-noise'), trainStorage.labels, info.numClasses, trainStorage.sourceIndex);
  const planner = new BatchPlanner(info.sizes, { batchSize: spec.data.batchSize, evalBatchSize: spec.data.testBatchSize, seed });
  const aug = spec.data.augment;
  const augmentSeed = deriveSeed(seed, 'augment');
  const augment: Required<AugmentOptions> =
    aug === 'default'
      ? defaultAugmentOptions(info, augmentSeed)
      : aug === 'none'
        ? { crop: 0, flip: false, seed: augmentSeed }
        : aug === 'crop-flip'
          ? { crop: 4, flip: true, seed: augmentSeed }
          : { crop: aug.crop, flip: aug.flip, seed: augmentSeed };
  const modelOptions = { numClasses: info.numClasses, inputShape: [...info.imageShape] as [number, number, number], seed: deriveSeed(seed, 'model-init') };
  const model = createModelByName(registry, spec.model.name, modelOptions);
  const te = spec.trainer.te ? new TemporalEnsemble(info.sizes.train ?? 0, info.numClasses, spec.trainer.te) : null;
  const attack = spec.attack;
  const trainerOptions: TrainerOptions = {
    attack: {
      eps: attack.eps,
      alpha: attack.alpha,
      steps: attack.steps,
      norm: attack.norm,
      restarts: attack.restarts,
      ...(attack.randomStart ? { randomStart: attack.randomStart } : {}),
      // resolved by the trainer through the registry; the default PGD leaves its settings as they were
      ...(attack.name !== 'pgd' ? { name: attack.name } : {}),
      ...(attack.objective !== undefined ? { objective: attack.objective } : {}),
    },
    ...(spec.trainer.beta !== undefined ? { beta: spec.trainer.beta } : {}),
    te: spec.trainer.te,
  };
  const trainer = registry.create<Trainer, TrainerOptions>('trainer', spec.trainer.name, trainerOptions);
  const optimizer = new Sgd(model.parameters, { momentum: spec.optimizer.momentum, weightDecay: spec.optimizer.weightDecay });
  const s = spec.schedule;
  const lr = registry.create<LrSchedule, unknown>('schedule', s.name, {
    lr: spec.optimizer.lr,
    milestones: s.milestones,
    gamma: s.gamma,
    stepSize: s.stepSize ?? 100,
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
  return threatModel(spec.eval.attack, { base: { norm: t.norm, eps: t.eps, alpha: t.alpha, steps: t.steps, restarts: t.restarts }, origin: 'config' });
}
