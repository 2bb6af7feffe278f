/**
 * How a run's per-epoch evaluation attacks (the numbers in epochs.parquet and the eval-phase rows):
 * stated in spec.json (`evaluation`), summary.json (`eval_protocol`), the summary table and the report,
 * so a robust accuracy is never read without its attack.
 */
export interface EvalProtocol {
  readonly attack: 'pgd';
  /** True when `eval.attack: "inherit"` made the evaluation reuse the training attack's settings. */
  readonly inherited: boolean;
  readonly norm: string;
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  readonly restarts: number;
  readonly random_start: string;
  /** Evaluated every k epochs (and at the last). */
  readonly every: number;
  /**
   * Examples each evaluation attacks: the test split, the val split (0 without one), the training set (or its seeded subset; 0 with
   * eval.train false).
   */
  readonly n_test: number;
  readonly n_val: number;
  readonly n_train: number;
}

const NORM: Record<string, string> = { linf: 'ℓ∞', l2: 'ℓ2' };

/** "PGD-10 ℓ∞ ε=0.1 α=0.025, 1 restart, uniform start, every 5 epochs; test n=500, train n=300". */
export function describeEvalProtocol(p: EvalProtocol): string {
  const f = (x: number) => (Number.isInteger(x) ? String(x) : x.toPrecision(4).replace(/0+$/, ''));
  const n = [`test n=${p.n_test}`, ...(p.n_val ? [`val n=${p.n_val}`] : []), ...(p.n_train ? [`train n=${p.n_train}`] : [])].join(', ');
  return (
    `PGD-${p.steps} ${NORM[p.norm] ?? p.norm} ε=${f(p.eps)} ` +
    `α=${f(p.alpha)}, ${p.restarts} restart${p.restarts === 1 ? '' : 's'}, ` +
    `${p.random_start} start` +
    `${p.inherited ? ' (the training attack, eval.attack: "inherit")' : ''}, every ${p.every} epoch${p.every === 1 ? '' : 's'}; ${n}`
  );
}
