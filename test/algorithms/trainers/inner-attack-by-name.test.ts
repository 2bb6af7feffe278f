import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/backend/select';
import { deriveSeed } from '../../../src/core/rng';
import { createModel } from '../../../src/models';
import { apgdCe } from '../../../src/algorithms/attacks/apgd';
import { fgsm } from '../../../src/algorithms/attacks/fgsm';
import { pgd } from '../../../src/algorithms/attacks/pgd';
import type { Attack, AttackOptions } from '../../../src/algorithms/attacks/types';
import { ceObjective } from '../../../src/algorithms/objectives/ce';
import { martTrainer, pgdAtTrainer, tradesTrainer } from '../../../src/algorithms/trainers';
import type { TrainerAttackInput } from '../../../src/algorithms/trainers/types';
import { lookupIn } from '../../../src/config/builtins';
import { defaultRegistry } from '../../../src/run/default-registry';
import { executeRun } from '../../../src/run/execute-run';
import { parquetRunSink } from '../../../src/logs/sinks';
import { loadRuns, resolveRuns } from '../../../src/config/spec';
import { buildRun } from '../../../src/config/build-run';

const CONFIG = path.join(__dirname, '..', '..', '..', 'config', 'pgd-at-inner-attack-cpu.json');
/** The shipped example, cut to seconds: 16 digits, one epoch of two steps, 3 attack iterations. */
const TINY = [
  'epochs=1',
  'data.trainSize=16',
  'data.testSize=8',
  'data.batchSize=8',
  'data.testBatchSize=8',
  'attack.steps=3',
  'eval.attack.steps=1',
  'schedule.milestones=[1]',
];

const TINY_SPEC = { name: 'x', epochs: 1, data: { source: 'mnist', trainSize: 16, testSize: 8 }, model: { name: 'mlp' } };

async function equal(a: tf.Tensor, b: tf.Tensor): Promise<boolean> {
  const [x, y] = [await a.data(), await b.data()];
  return x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
}

describe('a trainer resolves its inner attack and objective by name', () => {
  jest.setTimeout(60_000);
  beforeAll(async () => {
    await initBackend('cpu');
  });

  const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 5 });
  const batch = () => {
    const x = tf.randomUniform([6, 28, 28, 1], 0, 1, 'float32', 11) as tf.Tensor4D;
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5], 'int32');
    return { x, y, logitsNatEval: model.apply(x, 'eval'), seed: 77, rowKeys: Int32Array.from([10, 11, 12, 13, 14, 15]) };
  };
  const input = (b: ReturnType<typeof batch>): TrainerAttackInput => ({
    model,
    x: b.x,
    y: b.y,
    seed: b.seed,
    rowKeys: b.rowKeys,
    logitsNatEval: b.logitsNatEval,
    te: null,
  });
  const settings = { eps: 0.1, alpha: 0.02, steps: 5, norm: 'linf', restarts: 1 } as const;

  it("PGD-AT with attack.name 'apgd-ce' runs APGD-CE: its x′ is apgdCe's on the same batch and seed, not PGD's", async () => {
    const b = batch();
    const before = tf.memory().numTensors;
    const trainer = pgdAtTrainer({ attack: { ...settings, name: 'apgd-ce' } }, lookupIn(defaultRegistry()));
    const viaTrainer = trainer.attack(input(b));
    const direct = apgdCe(model, b.x, b.y, b.seed, { eps: 0.1, steps: 5, restarts: 1, norm: 'linf' });
    const viaPgd = pgdAtTrainer({ attack: settings }).attack(input(b));
    expect(await equal(viaTrainer, direct)).toBe(true);
    expect(await equal(viaTrainer, viaPgd)).toBe(false);
    tf.dispose([viaTrainer, direct, viaPgd]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([b.x, b.y, b.logitsNatEval]);
  });

  it("FGSM-RS (attack.name 'fgsm', α = 1.25ε, PGD-AT's uniform clamped start) is fgsm with CE on the same draws", async () => {
    const b = batch();
    const trainer = pgdAtTrainer({ attack: { ...settings, name: 'fgsm', alpha: 0.125 } }, lookupIn(defaultRegistry()));
    const viaTrainer = trainer.attack(input(b));
    const direct = fgsm(model, b.x, b.y, b.seed, {
      eps: 0.1,
      alpha: 0.125,
      randomStart: 'uniform-clamped',
      objective: ceObjective(),
      rowKeys: b.rowKeys,
    });
    expect(await equal(viaTrainer, direct)).toBe(true);
    tf.dispose([viaTrainer, direct, b.x, b.y, b.logitsNatEval]);
  });

  it("attack.objective swaps what the inner PGD maximises ('cw-margin')", async () => {
    const b = batch();
    const registry = defaultRegistry();
    const viaTrainer = pgdAtTrainer({ attack: { ...settings, objective: 'cw-margin' } }, lookupIn(registry)).attack(input(b));
    const objective = registry.create<ReturnType<typeof ceObjective>, unknown>('objective', 'cw-margin', { logitsNat: b.logitsNatEval });
    const direct = pgd(model, b.x, b.y, b.seed, { ...settings, randomStart: 'uniform-clamped', objective, rowKeys: b.rowKeys });
    expect(await equal(viaTrainer, direct)).toBe(true);
    tf.dispose([viaTrainer, direct, b.x, b.y, b.logitsNatEval]);
  });

  it('refuses combinations an attack cannot honour, naming the field', () => {
    const lookup = lookupIn(defaultRegistry());
    // TRADES maximises KL(p(x) ‖ p(x′)); APGD-CE maximises its own CE
    expect(() => tradesTrainer({ attack: { name: 'apgd-ce' } }, lookup)).toThrow(
      /attack\.name: 'apgd-ce' always maximises its own objective 'ce' and takes no other, but trainer 'trades' maximises 'trades-kl'/,
    );
    // TE adds a penalty APGD cannot see
    expect(() => pgdAtTrainer({ attack: { name: 'apgd-ce' }, te: {} }, lookup)).toThrow(
      /attack\.name: 'apgd-ce' .* maximises 'ce' \+ the TE penalty/,
    );
    expect(() => martTrainer({ attack: { name: 'cw' } }, lookup)).toThrow(
      /attack\.name: 'cw' always maximises its own objective 'cw-margin'.*or set attack\.objective to 'cw-margin'/,
    );
    expect(() => pgdAtTrainer({ attack: { name: 'apgd' } }, lookup)).toThrow(
      /attack\.name: unknown attack 'apgd' .*registered attacks: apgd-ce, apgd-dlr/,
    );
    expect(() => pgdAtTrainer({ attack: { objective: 'kl' } }, lookup)).toThrow(/attack\.objective: unknown objective 'kl'/);
    // naming APGD-DLR's own objective makes it consistent
    expect(() => pgdAtTrainer({ attack: { name: 'apgd-dlr', objective: 'dlr' } }, lookup)).not.toThrow();
    // the clean trainer runs no attack: a name there would be ignored
    const standard = (attack: Record<string, unknown>) => () =>
      buildRun(resolveRuns({ ...TINY_SPEC, trainer: { name: 'standard' }, attack })[0].spec, defaultRegistry());
    expect(standard({ name: 'apgd-ce' })).toThrow(/attack\.name: trainer 'standard' runs no attack, so 'apgd-ce' would be ignored/);
    expect(standard({ objective: 'cw-margin' })).toThrow(/attack\.objective: trainer 'standard' runs no attack/);
  });

  it('the shipped config runs its APGD-CE variant through the registry (a spy registered under the name sees every step)', async () => {
    const [run] = loadRuns(CONFIG, TINY).filter((r) => r.variant === 'apgd-ce');
    expect(run.spec.attack.name).toBe('apgd-ce');
    const registry = defaultRegistry();
    const calls: { seed: number; options: AttackOptions }[] = [];
    // records the call and returns apgdCe's own x′, so the run's records stay APGD-CE's
    const spy: Attack<AttackOptions> = (m, x, y, seed, options) => {
      calls.push({ seed, options });
      return apgdCe(m, x, y, seed, options);
    };
    registry.register('attack', 'apgd-ce', () => Object.assign(spy, { fixedObjective: 'ce' }));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-inner-'));
    const outcome = await executeRun(run, { outDir: out, registry, backend: 'cpu', sinks: () => [parquetRunSink()] });
    expect(outcome.status).toBe('completed');
    // one call per training step (16 digits / 8), with the config's ε and steps, and the attack seeds of the steps
    expect(calls.map((c) => c.seed)).toEqual([0, 1].map((step) => deriveSeed(1, 'attack', 1, step)));
    for (const c of calls) expect(c.options).toMatchObject({ eps: 0.1, steps: 3, restarts: 1, norm: 'linf' });
    // the PGD variant of the same config never calls it
    const [pgdRun] = loadRuns(CONFIG, TINY).filter((r) => r.variant === 'pgd');
    calls.length = 0;
    await executeRun(pgdRun, { outDir: out, registry, backend: 'cpu', sinks: () => [parquetRunSink()] });
    expect(calls).toEqual([]);
  });
});
