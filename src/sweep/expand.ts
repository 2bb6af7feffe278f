import * as fs from 'fs';
import * as path from 'path';
import { setDottedPath } from '../config/dotted-path';
import { writeManifest, type SweepManifest } from './manifest';
import type { SweepAxis, SweepSpec } from './sweep-spec';
import { writeJsonDurable } from '../core/durable-file';

/** One point of a sweep: its position, its axis values, and the full run config. */
export interface SweepPoint {
  index: number;
  values: Record<string, unknown>;
  config: Record<string, unknown>;
}

/**
 * All combinations of the axes' values, in row-major order: the first axis varies slowest, the last
 * fastest (as nested for-loops written in axis order, or Python's itertools.product).
 */
export function cartesianProduct(axes: readonly SweepAxis[]): unknown[][] {
  let combos: unknown[][] = [[]];
  for (const axis of axes) combos = combos.flatMap((prefix) => axis.values.map((v) => [...prefix, v]));
  return combos;
}

/** The base config deep-copied once per point, with each axis path set to that point's value. */
export function expandSweep(spec: Pick<SweepSpec, 'base' | 'axes' | 'file'>): SweepPoint[] {
  return cartesianProduct(spec.axes).map((combo, index) => {
    const config = structuredClone(spec.base);
    const values: Record<string, unknown> = {};
    spec.axes.forEach((axis, i) => {
      const value = structuredClone(combo[i]);
      setDottedPath(config, axis.path, value, `${spec.file}: axes`);
      values[axis.path] = combo[i];
    });
    return { index, values, config };
  });
}

export interface MaterialisedSweep {
  /** `<out>/sweeps/<name>/` */
  dir: string;
  manifestPath: string;
  manifest: SweepManifest;
}

/** The folder holding a sweep's configs, manifest, logs and job files. */
export function sweepDir(outDir: string, name: string): string {
  return path.join(path.resolve(outDir), 'sweeps', name);
}

/**
 * Writes every point as `<out>/sweeps/<name>/configs/NNNN.json` and the manifest next to them, each file
 * atomically. Re-materialising is safe: identical points give identical files (hence the same run_ids),
 * and configs left over from a larger earlier version of the sweep are removed.
 */
export function materialiseSweep(spec: SweepSpec, outDir: string = spec.out): MaterialisedSweep {
  const dir = sweepDir(outDir, spec.name);
  const configsDir = path.join(dir, 'configs');
  const points = expandSweep(spec);
  const width = Math.max(4, String(points.length - 1).length);
  const runs = points.map((p) => {
    const configPath = path.join(configsDir, `${String(p.index).padStart(width, '0')}.json`);
    writeJsonDurable(configPath, rebaseExtends(p.config, spec.baseDir, configsDir), { mkdir: true });
    return { index: p.index, configPath, values: p.values };
  });
  const keep = new Set(runs.map((r) => path.basename(r.configPath)));
  for (const f of fs.readdirSync(configsDir)) {
    if (/^\d+\.json$/.test(f) && !keep.has(f)) fs.rmSync(path.join(configsDir, f));
  }
  const manifest: SweepManifest = {
    file: path.join(dir, 'manifest.json'),
    sweep: spec.name,
    outDir: path.resolve(outDir),
    axes: spec.axes,
    runs,
  };
  writeManifest(manifest.file, manifest);
  return { dir, manifestPath: manifest.file, manifest };
}

/**
 * `extends` is relative to the file that contains it; the point's config lives in another folder than the
 * base, so the path is rewritten to reach the same file from there.
 */
function rebaseExtends(config: Record<string, unknown>, fromDir: string, toDir: string): Record<string, unknown> {
  if (typeof config.extends !== 'string') return config;
  const target = path.resolve(fromDir, config.extends);
  return { ...config, extends: path.relative(toDir, target).split(path.sep).join('/') };
}
