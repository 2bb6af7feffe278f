import { z } from 'zod';

/**
 * What the summary and the report need to know about a run's setup, read from the run-start
 * event's `spec`. The pipeline provides it as `spec.meta` (preferred; `te` defaults to whether the
 * trainer name ends in '+te' or `spec.trainer.te` is set); failing that, the same keys
 * are looked for at the top of the spec as the RunSpec (src/config/spec.ts) has them:
 * `spec.trainer` (a string or `{ name, te }`), `spec.labelNoise` (or `label_noise`) `{ kind, rate }`,
 * `spec.attack` `{ norm, eps, alpha, steps }`.
 */
export interface RunMeta {
  /** Trainer registry name, e.g. 'pgd-at', 'trades'. */
  readonly trainer: string;
  /** Whether temporal ensembling is composed onto the trainer (spec.trainer.te set). */
  readonly te: boolean;
  readonly label_noise: { readonly kind: string; readonly rate: number };
  /** The training attack. */
  readonly attack: { readonly norm: string; readonly eps: number; readonly alpha: number; readonly steps: number };
}

const metaSchema = z.object({
  trainer: z.string(),
  te: z.boolean().optional(),
  label_noise: z.object({ kind: z.string(), rate: z.number() }),
  attack: z.object({ norm: z.string(), eps: z.number(), alpha: z.number(), steps: z.number() }),
});

const UNKNOWN: RunMeta = {
  trainer: 'unknown',
  te: false,
  label_noise: { kind: 'none', rate: 0 },
  attack: { norm: 'unknown', eps: NaN, alpha: NaN, steps: NaN },
};

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
function num(v: unknown): number {
  return typeof v === 'number' ? v : NaN;
}

/** Extracts RunMeta from a spec; fields that cannot be found are 'unknown' / NaN (never throws). */
export function readRunMeta(spec: unknown): RunMeta {
  const s = obj(spec) ?? {};
  const t = s.trainer;
  const direct = metaSchema.safeParse(s.meta);
  if (direct.success) {
    const te = direct.data.te ?? (/\+te$/.test(direct.data.trainer) || (obj(t)?.te !== undefined && obj(t)?.te !== null));
    return { ...direct.data, te };
  }
  const trainer = typeof t === 'string' ? t : typeof obj(t)?.name === 'string' ? String(obj(t)!.name) : UNKNOWN.trainer;
  const ln = obj(s.label_noise) ?? obj(s.labelNoise);
  const a = obj(s.attack) ?? obj(obj(t)?.attack);
  const te = obj(t)?.te;
  return {
    trainer,
    te: te !== undefined && te !== null && te !== false,
    label_noise: ln ? { kind: typeof ln.kind === 'string' ? ln.kind : 'unknown', rate: num(ln.rate) } : UNKNOWN.label_noise,
    attack: a
      ? { norm: typeof a.norm === 'string' ? a.norm : 'unknown', eps: num(a.eps), alpha: num(a.alpha), steps: num(a.steps) }
      : UNKNOWN.attack,
  };
}
