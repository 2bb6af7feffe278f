/** Small comparison helpers: jest's toEqual on million-element arrays takes minutes. */

/** Index of the first element where a and b differ (or lengths differ: -2); -1 when identical. */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deterministic pseudo-random values in [0, 1) (Park-Miller), independent of the code under test. */
export function unitValues(n: number, seed: number): Float32Array {
  let s = seed % 2147483647 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 16807) % 2147483647;
    out[i] = s / 2147483647;
  }
  return out;
}
