/**
 * Every error a user can cause is an AtflowError that names what was wrong: the config path, the file,
 * the value, and what was expected. `code` is stable so tests and callers can branch on it.
 */
export type ErrorCode =
  'CONFIG' | 'UNKNOWN_NAME' | 'DATA_FILE' | 'DATA_VALUE' | 'BACKEND' | 'IO' | 'NON_FINITE' | 'RESUME' | 'SHAPE' | 'ARGUMENT';

export class AtflowError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AtflowError';
  }
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      dp[i][j] = Math.min(dp[i - 1][j] + 1, dp[i][j - 1] + 1, dp[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return dp[a.length][b.length];
}

/** The closest candidate to `name`, if it is close enough to be a plausible typo. */
export function didYouMean(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * "unknown attack 'pgdd' (did you mean 'pgd'?); registered attacks: fgsm, pgd, ...". With `field`, the
 * config field that named it leads ("attack.name: unknown attack ..."): the one place that message is made.
 */
export function unknownName(kind: string, name: string, known: readonly string[], field?: string): AtflowError {
  const hint = didYouMean(name, known);
  return new AtflowError(
    'UNKNOWN_NAME',
    `${field ? `${field}: ` : ''}unknown ${kind} ` +
      `'${name}'${hint ? ` (did you mean '${hint}'?)` : ''}; registered ` +
      `${kind}s: ${[...known].sort().join(', ')}`,
    { kind, name, known: [...known], ...(field ? { field } : {}) },
  );
}
