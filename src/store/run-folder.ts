import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { canonicalJson, type ResolvedRun } from '../config/spec';
import type { PluginRef } from '../config/registry';
import { isPlainObject } from '../config/dotted-path';

/** Reads an existing run folder's state: finished, unfinished (resumable) or absent. */
export function runFolderState(runDir: string): 'absent' | 'finished' | 'unfinished' {
  if (!fs.existsSync(runDir)) return 'absent';
  if (fs.existsSync(path.join(runDir, '_SUCCESS'))) return 'finished';
  return 'unfinished';
}

/**
 * The spec as stored in the run folder, with the metadata the summary and report read, and the plugins
 * the run was built with (absolute module paths: `atflow eval`, `probe` load them from here).
 */
export function storedSpec(run: ResolvedRun, plugins: readonly PluginRef[] = []): Record<string, unknown> {
  const s = run.spec;
  return {
    ...s,
    variant: run.variant,
    meta: {
      trainer: s.trainer.te ? `${s.trainer.name}+te` : s.trainer.name,
      label_noise: { kind: s.labelNoise.kind, rate: s.labelNoise.rate },
      attack: { norm: s.attack.norm, eps: s.attack.eps, alpha: s.attack.alpha, steps: s.attack.steps },
      ...(plugins.length ? { plugins: plugins.map((p) => ({ module: p.module, export: p.export })) } : {}),
    },
  };
}

/** Dotted paths where two specs differ (for the resume-mismatch message). */
export function specDifferences(a: unknown, b: unknown, at = ''): string[] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => specDifferences(a[k], b[k], at ? `${at}.${k}` : k));
  }
  return canonicalJson(a) === canonicalJson(b) ? [] : [`${at || '(top level)'} (folder: ${JSON.stringify(a) ?? 'absent'}, now: ${JSON.stringify(b) ?? 'absent'})`];
}

/**
 * An unfinished run folder may be continued only by the same config (its description aside) and only
 * with `resume`; otherwise an error says what differs or how to continue.
 */
export function checkUnfinishedFolder(runDir: string, stored: Record<string, unknown>, resume: boolean): void {
  const specFile = path.join(runDir, 'spec.json');
  if (fs.existsSync(specFile)) {
    let previous: { spec?: unknown };
    try {
      previous = JSON.parse(fs.readFileSync(specFile, 'utf8'));
    } catch (e) {
      throw new AtflowError('RESUME', `${specFile}: unreadable (${(e as Error).message}); the run folder is damaged: use another --out or remove the folder`, { file: specFile });
    }
    // what the run computes must match; its description (not in the run id either) and where its plugins' files are may change
    const withoutDescription = (v: unknown) => {
      if (!v || typeof v !== 'object') return v;
      const { description: _d, meta, ...rest } = v as Record<string, unknown>;
      if (!meta || typeof meta !== 'object') return meta === undefined ? rest : { ...rest, meta };
      const { plugins: _p, ...metaRest } = meta as Record<string, unknown>;
      return { ...rest, meta: metaRest };
    };
    const now = withoutDescription(JSON.parse(JSON.stringify(stored)));
    const before = withoutDescription(previous?.spec);
    if (canonicalJson(before) !== canonicalJson(now)) {
      const diff = specDifferences(before, now);
      throw new AtflowError(
        'RESUME',
        `${runDir}: the folder holds a run of a different config (spec.json differs at ${diff.slice(0, 5).join(', ')}${diff.length > 5 ? ', ...' : ''}); use another --out or remove the folder`,
        { runDir, differences: diff },
      );
    }
  }
  if (!resume && fs.readdirSync(runDir).length > 0) {
    throw new AtflowError('RESUME', `${runDir}: an unfinished run is already there; continue it with --resume, or remove the folder`, { runDir });
  }
}

/** Why a folder cannot be created, in words (mkdir's own errors say ENOENT for a read-only parent). */
function whyNotWritable(dir: string): string | null {
  let p = path.dirname(path.resolve(dir));
  while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  if (!fs.statSync(p).isDirectory()) return `${p} is a file, not a folder (ENOTDIR)`;
  try {
    fs.accessSync(p, fs.constants.W_OK);
  } catch (e) {
    return `${p} is not writable (${(e as NodeJS.ErrnoException).code})`;
  }
  return null;
}

/** Creates the run folder, or fails with an IO error that says why. */
export function createRunFolder(runDir: string): void {
  try {
    fs.mkdirSync(runDir, { recursive: true });
  } catch (e) {
    throw new AtflowError('IO', `cannot create the run folder ${runDir}: ${whyNotWritable(runDir) ?? (e as Error).message}`, { path: runDir });
  }
}

/**
 * Removes a run folder (`--rerun`): renamed aside first, so that the folder is either there as it was
 * or gone, never half-deleted under its own name (a crash leaves `.<name>.removing-<pid>`, which no run reads).
 */
export function removeRunFolder(runDir: string): void {
  if (!fs.existsSync(runDir)) return;
  const aside = path.join(path.dirname(runDir), `.${path.basename(runDir)}.removing-${process.pid}`);
  try {
    fs.rmSync(aside, { recursive: true, force: true });
    fs.renameSync(runDir, aside);
  } catch (e) {
    throw new AtflowError('IO', `cannot remove the run folder ${runDir} to run it again: ${(e as Error).message}`, { path: runDir });
  }
  fs.rmSync(aside, { recursive: true, force: true });
}
