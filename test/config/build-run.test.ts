import { initBackend } from '../../src/backend/select';
import { buildRun, threatModelOf, type RunParts } from '../../src/config/build-run';
import { describeEvalProtocol } from '../../src/core/eval-protocol';
import { defaultRegistry } from '../../src/run/default-registry';
import { resolveRuns, type RunSpecInput } from '../../src/config/spec';
import { noisyLabel } from '../../src/data/label-noise';

const base: RunSpecInput = {
  name: 'b',
  seed: 5,
  epochs: 1,
  data: { source: 'mnist', trainSize: 200, testSize: 10 },
  labelNoise: { kind: 'symmetric', rate: 0.6 },
  model: { name: 'mlp' },
};

function parts(over: Record<string, unknown>): RunParts {
  const [run] = resolveRuns({ ...base, ...over } as Record<string, unknown>);
  return buildRun(run.spec, defaultRegistry());
}

/** sourceIndex → used label of a run's training split. */
function labelBySourceIndex(p: RunParts): Map<number, number> {
  const s = p.source.split('train');
  const m = new Map<number, number>();
  for (let i = 0; i < s.size; i++) m.set(s.sourceIndex[i], p.labels.labelsUsed[i]);
  p.model.dispose();
  p.optimizer.dispose?.();
  return m;
}

describe('buildRun', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('label noise follows the image (sourceIndex), not its position after the val carve or a seeded subset', () => {
    const plain = labelBySourceIndex(parts({}));
    const withVal = labelBySourceIndex(parts({ data: { ...base.data, trainSize: 150, valSize: 120 } }));
    const seeded = labelBySourceIndex(parts({ data: { ...base.data, trainSize: 100, options: { subset: 'seeded' } } }));
    const full = labelBySourceIndex(parts({ data: { ...base.data, trainSize: undefined } }));
    let shared = 0;
    for (const other of [plain, withVal, seeded]) {
      for (const [key, label] of other) {
        // the same image (key) has the same used label in every run that holds it
        expect(label).toBe(full.get(key));
        if (plain.has(key) && other !== plain) shared++;
      }
    }
    // the runs hold the same images at different positions (else the test would prove nothing)
    expect(shared).toBeGreaterThan(20);
    // and the draw is the documented pure function of (seed, sourceIndex)
    const p = parts({ data: { ...base.data, trainSize: 150, valSize: 120 } });
    const s = p.source.split('train');
    for (let i = 0; i < s.size; i++)
      expect(p.labels.labelsUsed[i]).toBe(noisyLabel('symmetric', 0.6, p.labels.seed, s.sourceIndex[i], s.labels[i], 10));
    p.model.dispose();
  });
});

describe('the per-epoch evaluation attack', () => {
  const fgsm = { norm: 'linf', eps: 0.1, alpha: 0.1, steps: 1, randomStart: 'none' } as const;
  const evalOf = (evalAttack?: unknown, attack: Record<string, unknown> = fgsm) => {
    const [run] = resolveRuns({ ...base, attack, ...(evalAttack !== undefined ? { eval: { attack: evalAttack } } : {}) } as Record<
      string,
      unknown
    >);
    return threatModelOf(run.spec);
  };

  it('defaults to PGD-10 at the training ε with α = ε/4, not the training attack (FGSM here)', () => {
    expect(evalOf()).toEqual({ norm: 'linf', eps: 0.1, alpha: 0.025, steps: 10, restarts: 1, randomStart: 'uniform' });
    expect(evalOf(undefined, { norm: 'l2', eps: 0.5, alpha: 0.1, steps: 3 })).toEqual({
      norm: 'l2',
      eps: 0.5,
      alpha: 0.125,
      steps: 10,
      restarts: 1,
      randomStart: 'normal',
    });
    // fields given override the default, not the training attack
    expect(evalOf({ steps: 20 })).toEqual({ norm: 'linf', eps: 0.1, alpha: 0.025, steps: 20, restarts: 1, randomStart: 'uniform' });
  });

  it('inherits the training attack only when told: eval.attack "inherit"', () => {
    expect(evalOf('inherit')).toEqual({ norm: 'linf', eps: 0.1, alpha: 0.1, steps: 1, restarts: 1, randomStart: 'uniform' });
    expect(() => evalOf('inherits')).toThrow(/eval\.attack/);
  });

  it('the protocol (attack, steps, α, ε, norm, n) is part of the run parts', () => {
    const p = parts({ eval: { every: 5, trainSubset: 50 } });
    expect(p.evalProtocol).toEqual({
      attack: 'pgd',
      inherited: false,
      norm: 'linf',
      eps: 8 / 255,
      alpha: 2 / 255,
      steps: 10,
      restarts: 1,
      random_start: 'uniform',
      every: 5,
      n_test: 10,
      n_val: 0,
      n_train: 50,
    });
    expect(describeEvalProtocol(p.evalProtocol)).toBe(
      'PGD-10 ℓ∞ ε=0.03137 α=0.007843, 1 restart, uniform start, every 5 epochs; test n=10, train n=50',
    );
    p.model.dispose();
  });
});
