import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { quadrantData, trainedQuadrantMlp } from '../algorithms/attacks/tiny-model';
import { apgdCe } from '../../src/algorithms/attacks/apgd';
import { DEFAULT_ATTACK_SETTINGS } from '../../src/algorithms/attacks/settings';
import { pgdAtTrainer } from '../../src/algorithms/trainers';
import { buildRun } from '../../src/config/build-run';
import { validateSpec } from '../../src/config/spec';
import { defaultRegistry } from '../../src/run/default-registry';
import { runConfig } from '../../src/cli/run-config';
import { tempRoot, tinySpec, writeJson } from '../reliability/helpers';

/**
 * Issue 23, "One lookup path": every part a config names is a registry entry with its own options
 * schema, built-ins included. These fail on the code before: `attack.rho` was refused by the strict spec
 * schema whatever the attack, the optimiser, TE, augmentation and the batch planner were made with `new`
 * (registering a replacement changed nothing), and an unknown source, model or trainer name did not name
 * the config field that gave it.
 */
const root = tempRoot('atflow-kind-options-');
const quiet = { quiet: true, backend: 'cpu' as const, log: () => undefined };

function errorOf(f: () => unknown): AtflowError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(AtflowError);
    return e as AtflowError;
  }
  throw new Error('expected an error');
}

/** Builds the parts of a tiny spec (then frees them) and returns them. */
function build(over: Record<string, unknown>, registry = defaultRegistry()) {
  const parts = buildRun(validateSpec(tinySpec('k', over)), registry);
  parts.model.dispose();
  parts.optimizer.dispose?.();
  return parts;
}

describe("each entry's options come from the config, checked by its own schema", () => {
  jest.setTimeout(180_000);
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it("apgd-ce takes its own option rho (declared in apgd.ts only): the trainer's x′ is APGD-CE's at that ρ", () => {
    const registry = defaultRegistry();
    const spec = validateSpec(tinySpec('rho', { attack: { name: 'apgd-ce', eps: 0.15, steps: 20, rho: 0.3 } }));
    expect(spec.attack).toMatchObject({ name: 'apgd-ce', rho: 0.3 });
    const parts = buildRun(spec, registry);
    // a model that classifies its data (APGD leaves an example it already fools alone)
    const model = trainedQuadrantMlp();
    const d = quadrantData(32, 99);
    const x = tf.tensor4d(d.x, d.shape);
    const y = tf.tensor1d(d.y, 'int32');
    const logits = model.apply(x, 'eval');
    const viaConfig = parts.trainer.attack({ model, x, y, seed: 9, logitsNatEval: logits, te: null });
    const at = (rho: number) => apgdCe(model, x, y, 9, { eps: 0.15, steps: 20, restarts: 1, norm: 'linf', rho });
    const [want, other] = [at(0.3), at(0.75)];
    expect(Array.from(viaConfig.dataSync())).toEqual(Array.from(want.dataSync()));
    // ρ matters here: the default's x′ is another
    expect(Array.from(want.dataSync())).not.toEqual(Array.from(other.dataSync()));
    tf.dispose([viaConfig, want, other, x, y, logits]);
    model.dispose();
    parts.model.dispose();
    parts.optimizer.dispose?.();
  });

  it('the training attack reaches the trainer as the config wrote it (its name included), and its settings have one default', () => {
    const parts = build({ attack: { eps: 0.1 } });
    expect(parts.trainerOptions.attack).toEqual(validateSpec(tinySpec('k', { attack: { eps: 0.1 } })).attack);
    expect(parts.trainerOptions.attack).toMatchObject({ name: 'pgd', eps: 0.1 });
    const { name, ...configDefaults } = validateSpec({ epochs: 1, model: { name: 'mlp' } }).attack;
    expect(name).toBe('pgd');
    const { randomStart, ...trainerDefaults } = pgdAtTrainer().attackSettings!;
    expect(randomStart).toBe('uniform-clamped');
    expect(configDefaults).toEqual(DEFAULT_ATTACK_SETTINGS);
    expect(trainerDefaults).toEqual(DEFAULT_ATTACK_SETTINGS);
  });

  it("a misspelt option gets a did-you-mean from the entry's schema; one that only other entries read names them", () => {
    expect(errorOf(() => build({ attack: { name: 'apgd-ce', rhoo: 0.3 } })).message).toContain(
      "attack.rhoo: unknown field (did you mean 'attack.rho'?); allowed: name, norm, eps, alpha, steps, restarts, randomStart, rho, objective",
    );
    const e = errorOf(() => build({ attack: { name: 'pgd', rho: 0.3 } }));
    expect(e.message).toBe(
      "attack.rho: attack 'pgd' ignores rho (got 0.3); only 'apgd-ce' and 'apgd-dlr' read it: remove the field or change attack.name (on the command line, --set 'attack={\"name\":\"pgd\"}' replaces the whole attack object)",
    );
    expect(e.details).toMatchObject({ field: 'attack.rho', attack: 'pgd', acceptedBy: ['apgd-ce', 'apgd-dlr'] });
    // the optimiser's and TE's own
    expect(errorOf(() => build({ optimizer: { lr: 0.1, nesterov: 'yes' } })).message).toMatch(
      /optimizer\.nesterov: Expected boolean, received string/,
    );
    expect(errorOf(() => build({ trainer: { name: 'pgd-at', te: { start: 1, end: 2, momentun: 0.5 } } })).message).toMatch(
      /trainer\.te\.momentun: unknown field \(did you mean 'trainer\.te\.momentum'\?\)/,
    );
    expect(errorOf(() => build({ data: { source: 'mnist', augment: { crop: 4, flip: 'yes' } } })).message).toMatch(
      /data\.augment\.flip: Expected boolean, received string/,
    );
  });

  it('an unknown name leads with the config field that gave it, for every kind', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ data: { source: 'mnits' } }, /^data\.source: unknown source 'mnits' \(did you mean 'mnist'\?\)/],
      [{ model: { name: 'resnet19' } }, /^model\.name: unknown model 'resnet19' \(did you mean 'resnet18'\?\)/],
      [{ trainer: { name: 'trade' } }, /^trainer\.name: unknown trainer 'trade' \(did you mean 'trades'\?\)/],
      [{ attack: { name: 'pgdd' } }, /^attack\.name: unknown attack 'pgdd'/],
      [{ attack: { objective: 'kl' } }, /^attack\.objective: unknown objective 'kl'/],
      [{ optimizer: { name: 'adam' } }, /^optimizer\.name: unknown optimizer 'adam'; registered optimizers: sgd/],
      [
        { trainer: { name: 'pgd-at', te: { name: 'ema' } } },
        /^trainer\.te\.name: unknown ensemble 'ema'; registered ensembles: temporal-ensemble/,
      ],
      [{ data: { source: 'mnist', planner: 'random' } }, /^data\.planner: unknown planner 'random'; registered planners: epoch-shuffle/],
      [{ eval: { evaluator: 'pgdd' } }, /^eval\.evaluator: unknown evaluator 'pgdd'/],
      [{ logging: { sinks: ['parquett'] } }, /^logging\.sinks: unknown sink 'parquett'/],
    ];
    for (const [over, error] of cases) expect(errorOf(() => build(over)).message).toMatch(error);
  });

  it('the optimiser, TE, the augmentation and the batch planner are made by name: a registered replacement is what the run uses', async () => {
    const registry = defaultRegistry();
    const made: string[] = [];
    const wrap = (kind: 'optimizer' | 'ensemble' | 'augmentation' | 'planner', name: string) => {
      const builtin = registry.factory<unknown, unknown>(kind, name);
      const options = registry.optionsOf(kind, name);
      registry.register(kind, name, (o, r) => (made.push(`${kind} ${name}`), builtin(o, r)), { options });
    };
    wrap('optimizer', 'sgd');
    wrap('ensemble', 'temporal-ensemble');
    wrap('augmentation', 'crop-flip');
    wrap('planner', 'epoch-shuffle');
    const config = writeJson(
      path.join(root, 'swapped.json'),
      tinySpec('swapped', {
        epochs: 1,
        data: { source: 'mnist', trainSize: 16, testSize: 8, batchSize: 8, testBatchSize: 8, augment: { crop: 1, flip: true } },
        trainer: { name: 'pgd-at', te: { start: 1, end: 1 } },
      }),
    );
    expect(await runConfig(config, { outDir: path.join(root, 'swapped-out'), registry, ...quiet })).toBe(0);
    expect(made.sort()).toEqual(['augmentation crop-flip', 'ensemble temporal-ensemble', 'optimizer sgd', 'planner epoch-shuffle']);
    // and by a name of the user's: a config that names it gets it
    registry.register('optimizer', 'sgd-nesterov', (o: { parameters: never }, r) => r.create('optimizer', 'sgd', { ...o, nesterov: true }));
    const parts = build({ optimizer: { name: 'sgd-nesterov', lr: 0.1 } }, registry);
    expect(parts.optimizer.nesterov).toBe(true);
  });
});
