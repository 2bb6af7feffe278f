import { AtflowError } from '../core/errors';

/**
 * Dotted config paths ("trainer.name", "labelNoise.rate") as sweep axes use them. Same semantics as
 * `atflow run --set`: objects are walked key by key and created where missing (the key may live in an
 * `extends` base the sweep does not read), arrays and scalars cannot be walked into.
 */

// Keys that would reach Object.prototype instead of the config.
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);
const SEGMENT = /^[A-Za-z0-9_$-]+$/;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Splits and checks a dotted path; `where` prefixes the error ("sweep.json: axes"). */
export function parseDottedPath(dotted: string, where: string): string[] {
  const segments = dotted.split('.');
  const bad = segments.find((s) => !SEGMENT.test(s) || FORBIDDEN_SEGMENTS.has(s));
  if (dotted === '' || bad !== undefined) {
    throw new AtflowError(
      'CONFIG',
      `${where}: bad path '${dotted}': expected dot-separated keys made of letters, digits, '_', '-' or '$' ` +
        `(e.g. 'trainer.name')${bad !== undefined ? `; offending segment '${bad}'` : ''}`,
      { path: dotted },
    );
  }
  return segments;
}

/** A short, human description of a config value for error messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing (the key is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array (${truncate(JSON.stringify(v))})`;
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v} (${truncate(JSON.stringify(v))})`;
}

function truncate(s: string, n = 40): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Sets `value` at `dotted` inside `obj` (mutating it), creating missing objects on the way. */
export function setDottedPath(obj: Record<string, unknown>, dotted: string, value: unknown, where: string): void {
  const segments = parseDottedPath(dotted, where);
  let cur: Record<string, unknown> = obj;
  for (let i = 0; i < segments.length - 1; i++) {
    const key = segments[i];
    const next = Object.prototype.hasOwnProperty.call(cur, key) ? cur[key] : undefined;
    if (next === undefined || next === null) {
      cur[key] = {};
    } else if (!isPlainObject(next)) {
      const walked = segments.slice(0, i + 1).join('.');
      throw new AtflowError(
        'CONFIG',
        `${where}: bad path '${dotted}': '${walked}' is ${describeValue(next)} in the base config, not an object, so '${segments[i + 1]}' cannot be set inside it`,
        { path: dotted, at: walked },
      );
    }
    cur = cur[key] as Record<string, unknown>;
  }
  cur[segments[segments.length - 1]] = value;
}
