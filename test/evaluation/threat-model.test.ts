import { initBackend } from '../../src/backend/select';
import { buildRun } from '../../src/config/build-run';
import { resolveRuns, type RunSpecInput } from '../../src/config/spec';
import { defaultRegistry } from '../../src/run/default-registry';
import { threatModel } from '../../src/evaluation/threat-model';

/**
 * The threat model: one builder, from a config's eval.attack over its training attack or from
 * `atflow eval`'s flags over a run's threat model, checked once (issue 22 items 1-2, issue 23).
 */
const base: RunSpecInput = {
  name: 't',
  epochs: 1,
  data: { source: 'mnist', trainSize: 20, testSize: 10 },
  model: { name: 'mlp' },
  attack: { norm: 'linf', eps: 8 / 255, alpha: 2 / 255, steps: 2 },
};

function build(evalAttack: unknown) {
  const [run] = resolveRuns({ ...base, eval: { attack: evalAttack } } as Record<string, unknown>);
  return buildRun(run.spec, defaultRegistry());
}

beforeAll(async () => {
  await initBackend('cpu');
});

describe('threatModel', () => {
  it("fills the papers' protocol around ε: α = ε/4, PGD-10, 1 restart, uniform (ℓ∞) or 0.001·N (ℓ2) start", () => {
    expect(threatModel({ eps: 0.1 })).toEqual({ norm: 'linf', eps: 0.1, alpha: 0.025, steps: 10, restarts: 1, randomStart: 'uniform' });
    expect(threatModel({ eps: 0.5, norm: 'l2' })).toEqual({
      norm: 'l2',
      eps: 0.5,
      alpha: 0.125,
      steps: 10,
      restarts: 1,
      randomStart: 'normal',
    });
    expect(Object.isFrozen(threatModel({ eps: 0.1 }))).toBe(true);
  });

  it('refuses what no evaluation can mean, naming the field', () => {
    expect(() => threatModel({})).toThrow(/eps: ε is required/);
    expect(() => threatModel({ eps: 8 })).toThrow(/eps: ε = 8 is larger than 1.*8\/255/);
    expect(() => threatModel({ eps: 0.1, restarts: 0 })).toThrow(/restarts: must be an integer ≥ 1/);
    expect(() => threatModel({ eps: -0.1 })).toThrow(/eps: ε must be a finite number ≥ 0/);
    // ℓ2 radii above 1 are ordinary (MNIST ℓ2 ε = 2)
    expect(threatModel({ eps: 2, norm: 'l2' }).eps).toBe(2);
  });

  it("flags over a run's threat model: --norm without --eps is refused naming both; with --eps it is that ball", () => {
    const run = threatModel({ eps: 8 / 255 });
    expect(() => threatModel({ norm: 'l2' }, { base: run, origin: 'flags' })).toThrow(
      /--norm: l2 changes the norm of the run's evaluation \(linf\), but --eps is not given: ε would be the run's eps 0\.03137, a radius in ℓ∞; pass --eps/,
    );
    expect(threatModel({ norm: 'l2', eps: 0.5 }, { base: run, origin: 'flags' })).toMatchObject({ norm: 'l2', eps: 0.5 });
    // the same norm needs no ε of its own
    expect(threatModel({ norm: 'linf' }, { base: run, origin: 'flags' })).toMatchObject({ norm: 'linf', eps: 8 / 255 });
  });
});

describe("a run's threat model (buildRun)", () => {
  it('eval.attack in another norm than the training attack is that ball, everywhere the run states it', () => {
    const p = build({ norm: 'l2', eps: 0.5 });
    expect(p.threat).toEqual({ norm: 'l2', eps: 0.5, alpha: 0.125, steps: 10, restarts: 1, randomStart: 'normal' });
    expect(p.evalProtocol).toMatchObject({ norm: 'l2', eps: 0.5, alpha: 0.125, random_start: 'normal' });
    p.model.dispose();
  });

  it('eval.attack.norm other than attack.norm without eval.attack.eps is refused, naming both (not an ℓ2 ball of radius 8/255)', () => {
    expect(() => build({ norm: 'l2' })).toThrow(
      /eval\.attack\.norm: l2 changes the norm of the training attack \(attack\.norm linf\), but eval\.attack\.eps is not set: ε would be attack\.eps 0\.03137, a radius in ℓ∞; set eval\.attack\.eps/,
    );
  });

  it('an ℓ∞ ε on the 0–255 scale is refused before any data is read, naming the field it came from', () => {
    expect(() => build({ eps: 8 })).toThrow(/eval\.attack\.eps: ε = 8 is larger than 1.*write 8\/255/);
    const [run] = resolveRuns({ ...base, attack: { eps: 8 } } as Record<string, unknown>);
    expect(() => buildRun(run.spec, defaultRegistry())).toThrow(/attack\.eps: ε = 8 is larger than 1/);
  });
});
