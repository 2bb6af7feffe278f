/**
 * JSON with object keys sorted at every level, so equal values compare equal whatever their key order.
 * A key whose value is undefined is left out, as JSON.stringify leaves it out: `{a: 1, b: undefined}` and
 * `{a: 1}` are the same config (the run id hashes this; a resumed run compares its spec.json with it).
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
