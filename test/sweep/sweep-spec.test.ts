import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import { loadSweepSpec, parseSweepSpec } from '../../src/sweep/sweep-spec';
import { tempDir, writeJson } from './helpers';

const base = { seed: 0, trainer: { name: 'pgd-at', epochs: 2 }, labelNoise: { rate: 0 }, tags: ['a'] };
const file = path.join(os.tmpdir(), 'demo-sweep.json');
const valid = { base, axes: { 'trainer.name': ['pgd-at', 'trades'] } };

function errorOf(raw: unknown): AtflowError {
  try {
    parseSweepSpec(raw, file);
  } catch (e) {
    expect(e).toBeInstanceOf(AtflowError);
    return e as AtflowError;
  }
  throw new Error('expected parseSweepSpec to throw');
}

describe('parseSweepSpec', () => {
  test('fills defaults: name from the file, local executor with GPU auto-detection, out = runs', () => {
    const spec = parseSweepSpec(valid, file);
    expect(spec.name).toBe('demo-sweep');
    expect(spec.executor).toEqual({ kind: 'local', workers: undefined, gpus: 'auto' });
    expect(spec.out).toBe('runs');
    expect(spec.axes).toEqual([{ path: 'trainer.name', values: ['pgd-at', 'trades'] }]);
    expect(spec.base).toEqual(base);
    expect(spec.base).not.toBe(base); // a copy: expansion must not mutate the caller's object
  });

  test('loads the base relative to the sweep file, not the working directory', () => {
    const dir = tempDir();
    writeJson(path.join(dir, 'configs', 'base.json'), { seed: 7 });
    const sweepFile = writeJson(path.join(dir, 'configs', 'sweeps', 's.json'), { base: '../base.json', axes: { seed: [1, 2] } });
    const spec = loadSweepSpec(sweepFile);
    expect(spec.base).toEqual({ seed: 7 });
    expect(spec.baseDir).toBe(path.join(dir, 'configs'));
  });

  test('unknown executor kind names the field, the value and the allowed kinds', () => {
    const e = errorOf({ ...valid, executor: { kind: 'slrum' } });
    expect(e.code).toBe('CONFIG');
    expect(e.message).toContain('executor.kind');
    expect(e.message).toContain('"slrum"');
    expect(e.message).toContain('local, array');
  });

  test('an empty axis is rejected with its path', () => {
    const e = errorOf({ base, axes: { 'trainer.name': ['trades'], 'labelNoise.rate': [] } });
    expect(e.message).toContain('axes.labelNoise.rate');
    expect(e.message).toContain('non-empty array');
  });

  test('an axis that is not a list is rejected with its value', () => {
    const e = errorOf({ base, axes: { 'labelNoise.rate': 0.2 } });
    expect(e.message).toContain('axes.labelNoise.rate');
    expect(e.message).toContain('0.2');
  });

  test('no axes at all is rejected', () => {
    expect(errorOf({ base, axes: {} }).message).toContain('axes');
    expect(errorOf({ base }).message).toContain('axes');
  });

  test('syntactically bad paths are rejected with the offending segment', () => {
    expect(errorOf({ base, axes: { 'trainer..name': [1] } }).message).toContain("bad path 'trainer..name'");
    expect(errorOf({ base, axes: { '.seed': [1] } }).message).toContain("bad path '.seed'");
    expect(errorOf({ base, axes: { 'trainer.na me': [1] } }).message).toContain("segment 'na me'");
    expect(errorOf({ base, axes: { '__proto__.polluted': [1] } }).message).toContain("segment '__proto__'");
  });

  test('a path through a scalar or an array of the base is rejected, naming what is there', () => {
    const scalar = errorOf({ base, axes: { 'trainer.name.variant': ['x'] } });
    expect(scalar.message).toContain("bad path 'trainer.name.variant'");
    expect(scalar.message).toContain('\'trainer.name\' is a string ("pgd-at")');
    const array = errorOf({ base, axes: { 'tags.first': ['x'] } });
    expect(array.message).toContain("'tags' is an array");
  });

  test("a path to a key the base lacks is allowed (it may come from the base's extends)", () => {
    const spec = parseSweepSpec({ base, axes: { 'attack.eps': [0.1, 0.3] } }, file);
    expect(spec.axes[0].path).toBe('attack.eps');
  });

  test('duplicate values and overlapping axes are rejected (they would launch the same run twice)', () => {
    expect(errorOf({ base, axes: { 'labelNoise.rate': [0.2, 0.4, 0.2] } }).message).toContain('listed twice (positions 0 and 2)');
    expect(
      errorOf({
        base,
        axes: {
          trainer: [
            { a: 1, b: 2 },
            { b: 2, a: 1 },
          ],
        },
      }).message,
    ).toContain('listed twice');
    const overlap = errorOf({ base, axes: { trainer: [{ name: 'x' }], 'trainer.name': ['y'] } });
    expect(overlap.message).toContain("axes 'trainer' and 'trainer.name' overlap");
  });

  test('unknown keys get a did-you-mean', () => {
    const e = errorOf({ base, axis: { seed: [1] } });
    expect(e.message).toContain("axis: unknown key (did you mean 'axes'?)");
    expect(errorOf({ ...valid, executor: { kind: 'local', worker: 2 } }).message).toContain(
      "executor.worker: unknown key (did you mean 'workers'?)",
    );
  });

  test('executor fields are checked', () => {
    expect(errorOf({ ...valid, executor: { kind: 'local', workers: 0 } }).message).toContain(
      'executor.workers: expected a positive integer, got a number (0)',
    );
    expect(errorOf({ ...valid, executor: { kind: 'local', gpus: 'some' } }).message).toContain('executor.gpus');
    expect(errorOf({ ...valid, executor: { kind: 'array', parallelism: 1.5 } }).message).toContain('executor.parallelism');
    expect(errorOf({ ...valid, executor: { kind: 'array', resources: { gpus: -1 } } }).message).toContain('executor.resources.gpus');
    expect(errorOf({ ...valid, executor: { kind: 'array', command: [] } }).message).toContain('executor.command');
  });

  test('local executor options and array defaults', () => {
    expect(parseSweepSpec({ ...valid, executor: { kind: 'local', workers: 3, gpus: [0, 2] } }, file).executor).toEqual({
      kind: 'local',
      workers: 3,
      gpus: ['0', '2'],
    });
    const arr = parseSweepSpec({ ...valid, executor: { kind: 'array' } }, file).executor;
    expect(arr.kind === 'array' && arr.command).toBeUndefined(); // each job file picks its own default
    expect(arr).toMatchObject({
      kind: 'array',
      resources: { gpus: 0 },
      kubernetes: { image: 'atflow:latest', workdir: '/workspace', pvc: 'atflow-runs', retriesPerIndex: 2 },
    });
  });

  test('base: missing file, wrong type', () => {
    expect(errorOf({ base: 'nope.json', axes: { seed: [1] } }).message).toContain("base config 'nope.json' not found");
    expect(errorOf({ base: 3, axes: { seed: [1] } }).message).toContain('base: expected a config path');
  });

  test('name must be folder-safe', () => {
    expect(errorOf({ ...valid, name: '../escape' }).message).toContain('name: expected a folder-safe name');
  });
});
