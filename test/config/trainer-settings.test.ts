import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { buildRun } from '../../src/config/build-run';
import { defaultRegistry } from '../../src/run/default-registry';
import { loadRuns, loadRunsWithPlugins, validateSpec } from '../../src/config/spec';
import { expandSweep, loadSweepSpec } from '../../src/sweep';
import { tinySpec } from '../reliability/helpers';

/** Issue 11: `trainer.beta` / `trainer.te.penaltyOn` on a trainer that ignores them is an error, not a no-op. */

function buildError(over: Record<string, unknown>): AtflowError {
  try {
    const parts = buildRun(validateSpec(tinySpec('x', over)), defaultRegistry());
    parts.model.dispose();
    parts.optimizer.dispose?.();
  } catch (e) {
    expect(e).toBeInstanceOf(AtflowError);
    return e as AtflowError;
  }
  throw new Error('expected a config error');
}

/** Builds the parts (then frees them): the config is accepted. */
function builds(over: Record<string, unknown>): void {
  const parts = buildRun(validateSpec(tinySpec('x', over)), defaultRegistry());
  parts.model.dispose();
  parts.optimizer.dispose?.();
}

describe('trainer settings a trainer ignores', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it("beta on 'pgd-at' names the field, the trainer and the trainers that read it", () => {
    const e = buildError({ trainer: { name: 'pgd-at', beta: 6 } });
    expect(e.code).toBe('CONFIG');
    expect(e.message).toBe(
      "trainer.beta: trainer 'pgd-at' ignores beta (got 6); only 'trades' and 'mart' read it: remove the field or change trainer.name" +
        ` (on the command line, --set 'trainer={"name":"pgd-at"}' replaces the whole trainer object)`,
    );
    expect(e.details).toMatchObject({ field: 'trainer.beta', trainer: 'pgd-at', acceptedBy: ['trades', 'mart'] });
    expect(buildError({ trainer: { name: 'standard', beta: 1 } }).message).toMatch(/^trainer\.beta: trainer 'standard' ignores beta/);
  });

  it("the quickstart's trades variant switched to PGD-AT from the command line: the name alone is refused, the suggested --set works", () => {
    const config = path.join(__dirname, '..', '..', 'config', 'quickstart.json');
    expect(() => loadRunsWithPlugins(config, defaultRegistry(), { sets: ['trainer.name=pgd-at'] })).toThrow(
      /--set 'trainer=\{"name":"pgd-at"\}' replaces the whole trainer object/,
    );
    const runs = loadRunsWithPlugins(config, defaultRegistry(), { sets: ['trainer={"name":"pgd-at"}'] });
    expect(runs.map((r) => [r.variant, r.spec.trainer.name, 'beta' in r.spec.trainer])).toEqual(
      runs.map((r) => [r.variant, 'pgd-at', false]),
    );
  });

  it('te.penaltyOn on PGD-AT or standard training is an error too', () => {
    expect(buildError({ trainer: { name: 'pgd-at', te: { start: 1, end: 2, penaltyOn: 'natural' } } }).message).toMatch(
      /^trainer\.te\.penaltyOn: trainer 'pgd-at' ignores penaltyOn \(got "natural"\); only 'trades' and 'mart' read it/,
    );
    expect(buildError({ trainer: { name: 'standard', te: { start: 1, end: 2, penaltyOn: 'adversarial' } } }).message).toMatch(
      /trainer 'standard' ignores penaltyOn/,
    );
  });

  it('TRADES and MART take both; the shipped configs and sweeps give them to no other trainer', () => {
    const before = tf.memory().numTensors;
    builds({ trainer: { name: 'trades', beta: 3, te: { start: 1, end: 2, penaltyOn: 'adversarial' } } });
    builds({ trainer: { name: 'mart', beta: 5, te: { start: 1, end: 2, penaltyOn: 'natural' } } });
    builds({ trainer: { name: 'pgd-at', te: { start: 1, end: 2 } } });
    expect(tf.memory().numTensors).toBe(before);
    const configDir = path.join(__dirname, '..', '..', 'config');
    const specs = [
      'gradient-probe-cpu.json',
      'random-labels-cpu.json',
      'random-labels.json',
      'robust-overfitting-cpu.json',
      'quickstart.json',
    ].flatMap((f) => loadRuns(path.join(configDir, f)).map((r) => r.spec));
    const sweep = loadSweepSpec(path.join(configDir, 'sweeps', 'random-labels-noise.json'));
    specs.push(...expandSweep(sweep).map((p) => validateSpec(p.config)));
    for (const s of specs)
      if (s.trainer.beta !== undefined || s.trainer.te?.penaltyOn !== undefined) expect(['trades', 'mart']).toContain(s.trainer.name);
    expect(specs.some((s) => s.trainer.name === 'pgd-at')).toBe(true);
  });
});
