import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { isPlainObject } from '../config/dotted-path';
import type { SweepAxis } from './sweep-spec';
import { writeJsonDurable } from '../core/durable-file';

/**
 * `manifest.json`: the list of a sweep's points, the one file an executor or a cluster task needs. All
 * paths in it are relative to the manifest's own folder, so a sweep folder can be moved or mounted at
 * another path (a Kubernetes volume, a SLURM scratch dir) and still resolve.
 */
export interface ManifestRunEntry {
  index: number;
  /** Config file, relative to the manifest's folder. */
  config: string;
  /** The axis values of this point, keyed by dotted path, in axis order. */
  values: Record<string, unknown>;
}

export interface ManifestFile {
  version: 1;
  sweep: string;
  /** Output root handed to `atflow run --out`, relative to the manifest's folder. */
  out: string;
  axes: SweepAxis[];
  runs: ManifestRunEntry[];
}

/** A manifest with every path made absolute. */
export interface SweepManifest {
  file: string;
  sweep: string;
  outDir: string;
  axes: SweepAxis[];
  runs: Array<{ index: number; configPath: string; values: Record<string, unknown> }>;
}

export function writeManifest(file: string, manifest: SweepManifest): void {
  const dir = path.dirname(path.resolve(file));
  const onDisk: ManifestFile = {
    version: 1,
    sweep: manifest.sweep,
    out: toPortable(path.relative(dir, manifest.outDir) || '.'),
    axes: manifest.axes,
    runs: manifest.runs.map((r) => ({ index: r.index, config: toPortable(path.relative(dir, r.configPath)), values: r.values })),
  };
  writeJsonDurable(file, onDisk, { mkdir: true });
}

export function readManifest(file: string): SweepManifest {
  const abs = path.resolve(file);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(abs, 'utf8'));
  } catch (e) {
    throw new AtflowError('IO', `cannot read sweep manifest ${file}: ${(e as Error).message}`, { file });
  }
  const bad = (what: string) => new AtflowError('CONFIG', `${file}: not a sweep manifest: ${what}`, { file });
  if (!isPlainObject(raw) || raw.version !== 1) throw bad('expected an object with "version": 1');
  if (typeof raw.sweep !== 'string' || typeof raw.out !== 'string') throw bad('"sweep" and "out" must be strings');
  if (!Array.isArray(raw.runs)) throw bad('"runs" must be an array');
  const dir = path.dirname(abs);
  const runs = raw.runs.map((r: unknown, i: number) => {
    if (!isPlainObject(r) || r.index !== i || typeof r.config !== 'string' || !isPlainObject(r.values)) {
      throw bad(`runs[${i}] must be { "index": ${i}, "config": "<path>", "values": {...} }`);
    }
    return { index: i, configPath: path.resolve(dir, r.config), values: r.values };
  });
  return { file: abs, sweep: raw.sweep, outDir: path.resolve(dir, raw.out), axes: (raw.axes ?? []) as SweepAxis[], runs };
}

// Forward slashes keep the manifest valid on the Linux cluster that reads it, whatever wrote it.
function toPortable(p: string): string {
  return p.split(path.sep).join('/');
}
