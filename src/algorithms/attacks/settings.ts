import { z } from 'zod';
import { RANDOM_STARTS, type RandomStart } from './types';

/**
 * The training attack's settings (config `attack`, beside `name` and `objective`): one schema, one
 * default (the authors' PGD-10 at ℓ∞ 8/255 with α = 2/255, docs/algorithms.md §4.1, §4.3, §6). Every
 * built-in attack takes these as its options; an attack with options of its own extends this schema in
 * its own file (apgd.ts's `rho`), and nothing else changes. `randomStart` has no default here: it is the
 * trainer's (the authors' starts differ by trainer, docs/attacks.md).
 */
export const attackSettingsSchema = z
  .object({
    norm: z.enum(['linf', 'l2']).default('linf'),
    eps: z
      .number()
      .min(0)
      .default(8 / 255),
    alpha: z
      .number()
      .min(0)
      .default(2 / 255),
    steps: z.number().int().min(0).default(10),
    restarts: z.number().int().min(1).default(1),
    randomStart: z.enum(RANDOM_STARTS as [RandomStart, ...RandomStart[]]).optional(),
  })
  .strict();

export type AttackSettings = z.output<typeof attackSettingsSchema>;

/** The settings with every default filled (randomStart left to the trainer). */
export const DEFAULT_ATTACK_SETTINGS: AttackSettings = attackSettingsSchema.parse({});

/** Settings a trainer runs with: its own start filled in. */
export type ResolvedAttackSettings = AttackSettings & { readonly randomStart: RandomStart };
