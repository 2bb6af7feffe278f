import { AtflowError } from '../core/errors';

/**
 * Dotted config paths ("trainer.name", "labelNoise.rate"): the one setter behind `atflow run --set`,
 * `atflow sweep --set` and sweep axes. Objects are walked key by key and created where missing (the key
 * may live in an `extends` base not read here); arrays and scalars cannot be walked into; a key that
 * would reach Object.prototype (`__proto__`, `constructor`, `prototype`) is refused.
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

/**
 * Sets `value` at `dotted` inside `obj` (mutating it), creating missing objects on the way. `where`
 * prefixes the error ("--set seed.x", "sweep.json: axes").
 */
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
        `${where}: '${walked}' is not an object (it is ` +
          `${JSON.stringify(next)}): bad path '${dotted}', since '${walked}' is ${describeValue(next)} ` +
          `in the config and '${segments[i + 1]}' cannot be set inside it`,
        { path: dotted, at: walked },
      );
    }
    cur = cur[key] as Record<string, unknown>;
  }
  cur[segments[segments.length - 1]] = value;
}

/**
 * A number as the command line writes it: JSON's (0.1, 1e-3) or a fraction such as 8/255, the way papers
 * give ε. undefined when `text` is neither. The one parser for numbers set from the command line
 * (`--set`, `atflow eval --eps`).
 */
export function parseNumberText(text: string): number | undefined {
  const m = /^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:\/\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*)?$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) / (m[2] !== undefined ? Number(m[2]) : 1);
}

/**
 * `--set path=value`: the value is JSON when it parses (numbers, booleans, arrays, objects, "quoted
 * strings"), a number when it is a fraction (8/255), and else the bare string.
 */
export function parseSetArg(arg: string): [string, unknown] {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new AtflowError('CONFIG', `--set '${arg}': expected path=value, e.g. --set attack.eps=0.1`);
  const raw = arg.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = parseNumberText(raw) ?? raw;
  }
  return [arg.slice(0, eq), value];
}

/**
 * Applies `--set` overrides to a raw config (extends resolved) as the last word: each is set in the
 * config and in every variant that sets the same key (or a key above it), so no variant overrides it.
 * A path into `variants` itself edits that variant.
 */
export function applySets(raw: Record<string, unknown>, sets: readonly string[], where = '--set'): void {
  for (const s of sets) {
    const [p, value] = parseSetArg(s);
    setDottedPath(raw, p, structuredClone(value), `${where} ${p}`);
    if (p === 'variants' || p.startsWith('variants.') || !isPlainObject(raw.variants)) continue;
    const segments = p.split('.');
    for (const variant of Object.values(raw.variants)) {
      if (!isPlainObject(variant)) continue;
      // does this variant set the path, or an object or value on the way to it?
      let cur: unknown = variant;
      let touches = false;
      for (const seg of segments) {
        if (!isPlainObject(cur) || !Object.prototype.hasOwnProperty.call(cur, seg)) break;
        cur = cur[seg];
        touches = true;
      }
      if (touches) setDottedPath(variant, p, structuredClone(value), `${where} ${p}`);
    }
  }
}
