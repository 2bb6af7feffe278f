import { createHash } from 'crypto';
import { AtflowError } from '../core/errors';
import { canonicalJson } from '../config/canonical-json';
import type { ThreatModel } from '../evaluation/threat-model';
import { readStateHeader } from './evaluate-autoattack';
import { PLAIN_NAME, RunFolder } from '../store/run-folder';

/**
 * The folders under `<root>/eval/` that AutoAttack evaluations write (`atflow eval`, and the
 * end-of-training `eval.final.strong: "autoattack"`). Different settings never share a folder: the name
 * says what was attacked and in which ball, and an evaluation whose other settings (budget, seed, batch
 * size) differ from those already in that folder goes to a folder of its own instead of overwriting it.
 */
export interface EvalFolderKey {
  /** best | final | epoch-N for a run folder, the file's name for a bare weights file. */
  readonly checkpoint: string;
  readonly attacks: 'standard' | 'rand' | readonly string[];
  readonly threat: ThreatModel;
  readonly split: string;
  /** Examples actually attacked (the split may hold fewer than asked for). */
  readonly n: number;
}

/** What `--help` and the docs print for the default name. */
export const EVAL_FOLDER_PATTERN = '<checkpoint>-<attacks>-<norm>-eps<ε>-<split>-n<n>';

/** ε in a folder name: 4 significant digits (0.1, 0.5, 0.03137 for 8/255). */
function epsTag(eps: number): string {
  return Number.isInteger(eps) ? String(eps) : eps.toPrecision(4).replace(/\.?0+$/, '');
}

/** `<checkpoint>-<attacks>-<norm>-eps<ε>-<split>-n<n>`, e.g. final-standard-linf-eps0.03137-test-n1000. */
export function evalFolderName(k: EvalFolderKey): string {
  const attacks = typeof k.attacks === 'string' ? k.attacks : k.attacks.join('+');
  const checkpoint = k.checkpoint.replace(/[^A-Za-z0-9._+-]/g, '_').replace(/^\.+/, '_');
  return `${checkpoint}-${attacks}-${k.threat.norm}-eps${epsTag(k.threat.eps)}-${k.split}-n${k.n}`;
}

/** A `--name`: one folder directly under eval/, never a path out of it. */
export function checkEvalName(name: string): string {
  if (!PLAIN_NAME.test(name)) {
    throw new AtflowError(
      'ARGUMENT',
      `--name '${name}': expected a folder name under eval/ (letters, ` +
        `digits, '.', '_', '+', '=', '-', not starting with a dot, at most 200 ` +
        `characters), not a path`,
      { name },
    );
  }
  return name;
}

const sameSettings = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);

/**
 * The folder an evaluation with state header `header` writes to, under `<root>/eval/`. A given `name`
 * is used as it is, but a folder of that name holding other settings is refused unless `resume` (whose
 * own check then names the difference); a derived name whose folder holds other settings gets the
 * first 8 hex digits of the settings' hash appended, so a rerun with the same settings finds its folder
 * again and nothing written is overwritten.
 */
export function evalFolder(
  root: string,
  o: { readonly name?: string; readonly key: EvalFolderKey; readonly header: Record<string, unknown>; readonly resume: boolean },
): string {
  const folder = new RunFolder(root);
  if (o.name !== undefined) {
    const dir = folder.evalDir(checkEvalName(o.name));
    const held = readStateHeader(dir);
    if (!o.resume && held !== undefined && !sameSettings(held, o.header)) {
      const what =
        held === null ? 'an evaluation whose state.jsonl is unreadable' : `an evaluation with other settings (${canonicalJson(held)})`;
      throw new AtflowError(
        'ARGUMENT',
        `${dir} holds ${what}; ` +
          `this one (${canonicalJson(o.header)}) would overwrite it: pick ` +
          `another --name, or remove the folder`,
        { dir },
      );
    }
    return dir;
  }
  const base = evalFolderName(o.key);
  const dir = folder.evalDir(base);
  const held = readStateHeader(dir);
  if (held === undefined || (held !== null && sameSettings(held, o.header))) return dir;
  const hash = createHash('sha256').update(canonicalJson(o.header)).digest('hex').slice(0, 8);
  return folder.evalDir(`${base}-${hash}`);
}
