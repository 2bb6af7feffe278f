import { AtflowError } from '../core/errors';
import type { EvalProtocol } from '../core/eval-protocol';
import { RANDOM_STARTS, type Norm, type RandomStart } from '../algorithms/attacks/types';

/**
 * The threat model of a run's evaluation: the ball (norm, ε) every evaluation attacks in (the per-epoch
 * PGD, the sanity checks, the strong suite, AutoAttack, `atflow eval`) and the PGD attack the per-epoch
 * evaluation runs there (α, steps, restarts, start). Built once, from the config or from `atflow eval`'s
 * flags, by `threatModel`, which validates it; every evaluation takes it as it is. The brand keeps an
 * unvalidated object literal from standing in for one.
 */
declare const validated: unique symbol;
export interface ThreatModel {
  readonly norm: Norm;
  /** Radius of the ball on the [0, 1] pixel scale. */
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  readonly restarts: number;
  readonly randomStart: RandomStart;
  readonly [validated]: true;
}

/** What a threat model is built from: ε, and any of the others (the rest default, see threatModel). */
export interface ThreatSettings {
  readonly norm?: Norm;
  readonly eps?: number;
  readonly alpha?: number;
  readonly steps?: number;
  readonly restarts?: number;
  readonly randomStart?: RandomStart;
}

/** The attack a run trains with: where an evaluation's norm and ε come from unless it sets them, and all of `'inherit'`. */
export interface BaseAttack {
  readonly norm: Norm;
  readonly eps: number;
  readonly alpha: number;
  readonly steps: number;
  readonly restarts: number;
}

/**
 * Where the settings come from, for the messages: a config (`eval.attack.eps`, base `attack.eps`), the
 * flags of `atflow eval` (`--eps`, base: the run's evaluation), or code (`threatModel: eps`).
 */
export type ThreatModelOrigin = 'config' | 'flags' | 'code';

export interface ThreatModelContext {
  /** The attack the settings override: a run's training attack (config), or a run's own threat model (flags). */
  readonly base?: BaseAttack;
  readonly origin?: ThreatModelOrigin;
}

const NORMS: readonly Norm[] = ['linf', 'l2'];
const NORM_SIGN: Record<Norm, string> = { linf: 'ℓ∞', l2: 'ℓ2' };

function names(origin: ThreatModelOrigin): { field: (f: string) => string; base: (f: string) => string; code: 'CONFIG' | 'ARGUMENT' } {
  if (origin === 'config') return { field: (f) => `eval.attack.${f}`, base: (f) => `attack.${f}`, code: 'CONFIG' };
  if (origin === 'flags') return { field: (f) => `--${f}`, base: (f) => `the run's ${f}`, code: 'ARGUMENT' };
  return { field: (f) => `threatModel: ${f}`, base: (f) => `base ${f}`, code: 'ARGUMENT' };
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toPrecision(4).replace(/\.?0+$/, ''));

/**
 * The one builder of a threat model. `set` are the fields given for the evaluation (a config's
 * `eval.attack`, `atflow eval`'s `--eps` / `--norm`, or code), or `'inherit'`: the base attack's norm,
 * ε, α, steps and restarts. Defaults (the papers' protocol, docs/training.md § Evaluation): the base's
 * norm and ε, α = ε/4, 10 steps, 1 restart, start uniform (ℓ∞) or 0.001·N(0, I) (ℓ2), unclamped.
 * Refused, naming the fields: a norm other than the base's without its own ε (the base's ε is a radius
 * in the other norm: an ℓ2 ball of 0.031 from an ℓ∞ 8/255 run), ε > 1 in ℓ∞ (the 0–255 scale: write
 * 8/255), no ε at all, and values outside their range.
 */
export function threatModel(set: ThreatSettings | 'inherit', context: ThreatModelContext = {}): ThreatModel {
  const origin = context.origin ?? 'code';
  const n = names(origin);
  const base = context.base;
  const fail = (field: string, message: string, value?: unknown): never => {
    throw new AtflowError(n.code, `${field}: ${message}`, { field, ...(value !== undefined ? { value } : {}) });
  };
  if (set === 'inherit') {
    if (!base) return fail(n.field('attack'), '"inherit" needs a training attack to inherit from');
    set = { norm: base.norm, eps: base.eps, alpha: base.alpha, steps: base.steps, restarts: base.restarts };
  }
  const norm = set.norm ?? base?.norm ?? 'linf';
  if (!NORMS.includes(norm)) fail(n.field('norm'), `must be linf or l2, got '${String(norm)}'`, norm);
  if (set.eps === undefined && base && set.norm !== undefined && set.norm !== base.norm) {
    const what = origin === 'flags' ? "the run's evaluation" : `the training attack (${n.base('norm')} ${base.norm})`;
    fail(
      n.field('norm'),
      `${norm} changes the norm of ` +
        `${what}${origin === 'flags' ? ` (${base.norm})` : ''}, but ${n.field('eps')} ` +
        `is not ${origin === 'flags' ? 'given' : 'set'}: ε would be ${n.base('eps')} ` +
        `${fmt(base.eps)}, a radius in ${NORM_SIGN[base.norm]}; ` +
        (origin === 'flags'
          ? `pass ${n.field('eps')} with the ${NORM_SIGN[norm]} radius you mean (e.g. ${n.field('eps')} 0.5)`
          : `set ${n.field('eps')} to the ${NORM_SIGN[norm]} radius you mean`),
      norm,
    );
  }
  const epsField = set.eps !== undefined ? n.field('eps') : n.base('eps');
  const eps = set.eps ?? base?.eps;
  if (eps === undefined) return fail(n.field('eps'), 'ε is required (e.g. 8/255 for ℓ∞ on images, 0.5 for ℓ2)');
  if (!Number.isFinite(eps) || eps < 0) fail(epsField, `ε must be a finite number ≥ 0, got ${eps}`, eps);
  if (norm === 'linf' && eps > 1) {
    fail(
      epsField,
      `ε = ${eps} is larger than 1, but inputs are in [0, 1]; write ` +
        `${eps}/255 = ${(eps / 255).toFixed(5)} for an ε of ${eps} on the ` +
        `0–255 scale`,
      eps,
    );
  }
  const alpha = set.alpha ?? eps / 4;
  if (!Number.isFinite(alpha) || alpha < 0) fail(n.field('alpha'), `must be a finite number ≥ 0, got ${alpha}`, alpha);
  const steps = set.steps ?? 10;
  if (!Number.isInteger(steps) || steps < 0) fail(n.field('steps'), `must be an integer ≥ 0, got ${steps}`, steps);
  const restarts = set.restarts ?? 1;
  if (!Number.isInteger(restarts) || restarts < 1) fail(n.field('restarts'), `must be an integer ≥ 1, got ${restarts}`, restarts);
  const randomStart = set.randomStart ?? (norm === 'l2' ? 'normal' : 'uniform');
  if (!RANDOM_STARTS.includes(randomStart))
    fail(n.field('randomStart'), `must be one of ${RANDOM_STARTS.join(', ')}, got '${String(randomStart)}'`, randomStart);
  return Object.freeze({ norm, eps, alpha, steps, restarts, randomStart }) as ThreatModel;
}

/** The authors' per-epoch evaluation (train_te.py's eval_test_pgd): PGD-10, ℓ∞ ε = 8/255, α = 2/255, 1 restart, uniform start unclamped. */
export const DEFAULT_EVAL_ATTACK: ThreatModel = threatModel({ eps: 8 / 255, alpha: 2 / 255 });

/** The ball only, e.g. "ℓ∞ ε = 0.03137". */
export function describeBall(t: Pick<ThreatModel, 'norm' | 'eps'>): string {
  return `${NORM_SIGN[t.norm]} ε = ${fmt(t.eps)}`;
}

/** The record of a run's per-epoch evaluation (spec.json `evaluation`, summary.json `eval_protocol`, the summary table, the report). */
export function evalProtocolOf(
  threat: ThreatModel,
  run: { readonly inherited: boolean; readonly every: number; readonly n_test: number; readonly n_val: number; readonly n_train: number },
): EvalProtocol {
  return {
    attack: 'pgd',
    inherited: run.inherited,
    norm: threat.norm,
    eps: threat.eps,
    alpha: threat.alpha,
    steps: threat.steps,
    restarts: threat.restarts,
    random_start: threat.randomStart,
    every: run.every,
    n_test: run.n_test,
    n_val: run.n_val,
    n_train: run.n_train,
  };
}
