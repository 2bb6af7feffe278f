import * as fs from 'fs';
import * as path from 'path';
import { cartesianProduct, expandSweep, materialiseSweep } from '../../src/sweep/expand';
import { readManifest } from '../../src/sweep/manifest';
import { loadSweepSpec, parseSweepSpec } from '../../src/sweep/sweep-spec';
import { tempDir, writeJson } from './helpers';

const base = { seed: 0, trainer: { name: 'pgd-at', epochs: 2 }, labelNoise: { rate: 0 } };

describe('cartesianProduct', () => {
  test('row-major: first axis slowest, last fastest (as itertools.product)', () => {
    const combos = cartesianProduct([
      { path: 'a', values: [1, 2] },
      { path: 'b', values: ['x', 'y', 'z'] },
    ]);
    expect(combos).toEqual([
      [1, 'x'],
      [1, 'y'],
      [1, 'z'],
      [2, 'x'],
      [2, 'y'],
      [2, 'z'],
    ]);
  });

  test('three axes give the product of their sizes', () => {
    const combos = cartesianProduct([
      { path: 'a', values: [1, 2] },
      { path: 'b', values: [1, 2, 3] },
      { path: 'c', values: [1, 2, 3, 4, 5] },
    ]);
    expect(combos).toHaveLength(30);
    expect(new Set(combos.map((c) => c.join())).size).toBe(30);
    expect(combos[7]).toEqual([1, 2, 3]); // 7 = 0·15 + 1·5 + 2
  });
});

describe('expandSweep', () => {
  const spec = parseSweepSpec(
    { base, axes: { 'trainer.name': ['pgd-at', 'trades'], 'labelNoise.rate': [0.2, 1], 'attack.eps': [0.1] } },
    '/tmp/s.json',
  );

  test('each point is the base with every axis path set, nothing else changed', () => {
    const points = expandSweep(spec);
    expect(points.map((p) => p.index)).toEqual([0, 1, 2, 3]);
    expect(points[2].config).toEqual({ seed: 0, trainer: { name: 'trades', epochs: 2 }, labelNoise: { rate: 0.2 }, attack: { eps: 0.1 } });
    expect(points[1].values).toEqual({ 'trainer.name': 'pgd-at', 'labelNoise.rate': 1, 'attack.eps': 0.1 });
    expect(Object.keys(points[1].values)).toEqual(['trainer.name', 'labelNoise.rate', 'attack.eps']);
  });

  test('points are independent deep copies (and the base is untouched)', () => {
    const objSpec = parseSweepSpec({ base, axes: { trainer: [{ name: 'a', opts: { k: 1 } }, { name: 'b' }] } }, '/tmp/s.json');
    const points = expandSweep(objSpec);
    (points[0].config.trainer as { opts: { k: number } }).opts.k = 99;
    expect(objSpec.axes[0].values[0]).toEqual({ name: 'a', opts: { k: 1 } });
    expect(expandSweep(objSpec)[0].config.trainer).toEqual({ name: 'a', opts: { k: 1 } });
    expect(spec.base).toEqual(base);
  });
});

describe('materialiseSweep', () => {
  test('writes NNNN.json per point and a manifest with relative paths and axis values', () => {
    const dir = tempDir();
    writeJson(path.join(dir, 'root.json'), { seed: 3 });
    writeJson(path.join(dir, 'cfg', 'base.json'), { extends: '../root.json', trainer: { name: 'pgd-at' } });
    const sweepFile = writeJson(path.join(dir, 'cfg', 'sweeps', 'noise.json'), {
      base: '../base.json',
      axes: { 'trainer.name': ['pgd-at', 'trades'], 'labelNoise.rate': [0.2, 0.4, 0.6] },
    });
    const out = path.join(dir, 'runs');
    const m = materialiseSweep(loadSweepSpec(sweepFile), out);

    expect(m.dir).toBe(path.join(out, 'sweeps', 'noise'));
    const configs = fs.readdirSync(path.join(m.dir, 'configs')).sort();
    expect(configs).toEqual(['0000.json', '0001.json', '0002.json', '0003.json', '0004.json', '0005.json']);
    const c4 = JSON.parse(fs.readFileSync(path.join(m.dir, 'configs', '0004.json'), 'utf8'));
    expect(c4.trainer).toEqual({ name: 'trades' });
    expect(c4.labelNoise).toEqual({ rate: 0.4 });
    // `extends` still reaches root.json from the configs folder.
    expect(path.resolve(m.dir, 'configs', c4.extends)).toBe(path.join(dir, 'root.json'));

    const onDisk = JSON.parse(fs.readFileSync(m.manifestPath, 'utf8'));
    expect(onDisk.version).toBe(1);
    expect(onDisk.sweep).toBe('noise');
    expect(onDisk.out).toBe('../..');
    expect(onDisk.runs[4]).toEqual({ index: 4, config: 'configs/0004.json', values: { 'trainer.name': 'trades', 'labelNoise.rate': 0.4 } });
    expect(onDisk.axes).toEqual([
      { path: 'trainer.name', values: ['pgd-at', 'trades'] },
      { path: 'labelNoise.rate', values: [0.2, 0.4, 0.6] },
    ]);

    const read = readManifest(m.manifestPath);
    expect(read.outDir).toBe(out);
    expect(read.runs[5].configPath).toBe(path.join(m.dir, 'configs', '0005.json'));
  });

  test('re-materialising is byte-identical and removes configs of points that no longer exist', () => {
    const dir = tempDir();
    const sweepFile = path.join(dir, 's.json');
    writeJson(sweepFile, { base, axes: { seed: [1, 2, 3] } });
    const first = materialiseSweep(loadSweepSpec(sweepFile), path.join(dir, 'out'));
    const before = fs.readFileSync(path.join(first.dir, 'configs', '0001.json'), 'utf8');
    writeJson(sweepFile, { base, axes: { seed: [1, 2] } });
    const second = materialiseSweep(loadSweepSpec(sweepFile), path.join(dir, 'out'));
    expect(fs.readFileSync(path.join(second.dir, 'configs', '0001.json'), 'utf8')).toBe(before);
    expect(fs.readdirSync(path.join(second.dir, 'configs')).sort()).toEqual(['0000.json', '0001.json']);
    expect(readManifest(second.manifestPath).runs).toHaveLength(2);
    // No temp files left behind by the atomic writes.
    expect(fs.readdirSync(second.dir).sort()).toEqual(['configs', 'manifest.json']);
  });

  test('more than 10000 points widen the index', () => {
    const values = Array.from({ length: 101 }, (_, i) => i);
    const dir = tempDir();
    const spec = parseSweepSpec({ base: {}, axes: { a: values, b: values } }, path.join(dir, 'wide.json'));
    const m = materialiseSweep(spec, dir);
    expect(m.manifest.runs).toHaveLength(10201);
    expect(path.basename(m.manifest.runs[0].configPath)).toBe('00000.json');
    expect(path.basename(m.manifest.runs[10200].configPath)).toBe('10200.json');
    expect(JSON.parse(fs.readFileSync(m.manifest.runs[10200].configPath, 'utf8'))).toEqual({ a: 100, b: 100 });
  });
});
