import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadRuns, validateSpec, resolveRuns, runIdOf, parseSetArg } from '../../src/config/spec';
import { Registry } from '../../src/config/registry';
import { AtflowError } from '../../src/core/errors';

const minimal = { epochs: 2, model: { name: 'cnn-small' } };

function msg(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(AtflowError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('RunSpec validation', () => {
  it('fills the authors defaults', () => {
    const s = validateSpec(minimal);
    expect(s.attack).toMatchObject({ norm: 'linf', eps: 8 / 255, alpha: 2 / 255, steps: 10 });
    expect(s.optimizer).toEqual({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    expect(s.schedule.milestones).toEqual([100, 150]);
    expect(s.trainer).toEqual({ name: 'pgd-at', te: null });
  });

  it('names an unknown field and suggests the closest one', () => {
    expect(msg(() => validateSpec({ ...minimal, atack: {} }, 'a.json'))).toMatch(
      /a\.json.*\n.*atack: unknown field \(did you mean 'attack'\?\)/,
    );
    expect(msg(() => validateSpec({ ...minimal, optimizer: { lr: 0.1, wieghtDecay: 0 } }))).toMatch(
      /optimizer\.wieghtDecay: unknown field \(did you mean 'optimizer\.weightDecay'\?\)/,
    );
  });

  it('names a bad enum value and lists the allowed ones', () => {
    expect(msg(() => validateSpec({ ...minimal, labelNoise: { kind: 'symetric', rate: 1 } }))).toMatch(
      /labelNoise\.kind: "symetric" is not allowed \(did you mean 'symmetric'\?\); allowed: none, symmetric, symmetric-exclusive, pair/,
    );
  });

  it('names a value out of range and a missing field', () => {
    expect(msg(() => validateSpec({ ...minimal, labelNoise: { kind: 'symmetric', rate: 1.5 } }))).toMatch(/labelNoise\.rate: .*1\.5/);
    expect(msg(() => validateSpec({ model: { name: 'x' } }))).toMatch(/epochs: required number is missing/);
  });

  it('expands variants, each with its own run id; equal specs give equal ids', () => {
    const runs = resolveRuns({ ...minimal, name: 'q', variants: { trades: { trainer: { name: 'trades' } }, 'pgd-at': {} } });
    expect(runs.map((r) => r.variant)).toEqual(['trades', 'pgd-at']);
    expect(runs[0].spec.trainer.name).toBe('trades');
    expect(runs[1].spec.trainer.name).toBe('pgd-at');
    expect(runs[0].runId).not.toBe(runs[1].runId);
    expect(runIdOf(validateSpec({ ...minimal, name: 'q' }), null)).toBe(
      runIdOf(validateSpec({ name: 'q', model: { name: 'cnn-small' }, epochs: 2 }), null),
    );
    expect(runIdOf(validateSpec({ ...minimal, seed: 2 }), null)).not.toBe(runIdOf(validateSpec({ ...minimal, seed: 1 }), null));
  });

  it('follows extends and applies --set overrides', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-spec-'));
    fs.writeFileSync(path.join(dir, 'base.json'), JSON.stringify({ ...minimal, attack: { eps: 0.3, steps: 40 } }));
    fs.writeFileSync(path.join(dir, 'child.json'), JSON.stringify({ extends: 'base.json', attack: { steps: 10 } }));
    const [run] = loadRuns(path.join(dir, 'child.json'), ['attack.alpha=0.01', 'trainer.name=trades']);
    expect(run.spec.attack).toMatchObject({ eps: 0.3, steps: 10, alpha: 0.01 });
    expect(run.spec.trainer.name).toBe('trades');
    expect(parseSetArg('a.b=[1,2]')).toEqual(['a.b', [1, 2]]);
    expect(msg(() => parseSetArg('nonsense'))).toMatch(/expected path=value/);
    fs.writeFileSync(path.join(dir, 'bad.json'), '{"epochs": 2,');
    expect(msg(() => loadRuns(path.join(dir, 'bad.json')))).toMatch(/bad\.json: not valid JSON/);
    expect(msg(() => loadRuns(path.join(dir, 'missing.json')))).toMatch(/missing\.json: cannot read config \(ENOENT\)/);
  });

  it('eval.selectOn "val" without a validation split is refused naming data.valSize (it would select on the test set)', () => {
    expect(msg(() => resolveRuns({ ...minimal, eval: { selectOn: 'val' } }, 'c.json'))).toMatch(
      /c\.json: invalid config\n {2}eval\.selectOn: "val" needs a validation split, but data\.valSize is 0; set data\.valSize/,
    );
    // in a variant, the message names the variant
    expect(
      msg(() =>
        resolveRuns(
          { ...minimal, data: { valSize: 10 }, variants: { a: {}, b: { data: { valSize: 0 }, eval: { selectOn: 'val' } } } },
          'c.json',
        ),
      ),
    ).toMatch(/c\.json \(variant 'b'\).*\n.*eval\.selectOn/);
    expect(resolveRuns({ ...minimal, data: { valSize: 10 }, eval: { selectOn: 'val' } })[0].spec.eval.selectOn).toBe('val');
    expect(resolveRuns({ ...minimal, data: { options: { valSize: 10 } }, eval: { selectOn: 'val' } })[0].spec.eval.selectOn).toBe('val');
    // a stored spec.json stays readable (atflow eval / probe on an older run folder)
    expect(validateSpec({ ...minimal, eval: { selectOn: 'val' } }).eval.selectOn).toBe('val');
  });
});

describe('registry', () => {
  it('creates by name and lists the registered names on a typo', () => {
    const r = new Registry().register('attack', 'pgd', (o: { steps: number }) => `pgd-${o.steps}`).register('attack', 'fgsm', () => 'fgsm');
    expect(r.create('attack', 'pgd', { steps: 3 })).toBe('pgd-3');
    expect(msg(() => r.create('attack', 'pgdd', {}))).toBe("unknown attack 'pgdd' (did you mean 'pgd'?); registered attacks: fgsm, pgd");
    r.register('attack', 'pgd', () => 'mine');
    expect(r.create('attack', 'pgd', {})).toBe('mine');
  });
});
