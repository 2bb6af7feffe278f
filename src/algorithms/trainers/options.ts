import { z } from 'zod';

/**
 * The schemas of what a config's `trainer` block gives each trainer (beside `name`): config/kinds.ts
 * checks the block against the schema of the trainer it names, so a field that trainer does not read is
 * refused naming the trainers that do ("trainer 'pgd-at' ignores beta; only 'trades' and 'mart' read it").
 *
 * `te` here holds only what the TRAINER reads of the TE settings (TE's own momentum, start, end and
 * weight are the 'ensemble' entry's, te.ts): `penaltyOn`, read by TRADES and MART.
 */
export const trainerOptionsSchema = z.object({ te: z.object({}).strict().optional() }).strict();

/** Which outputs the TRADES / MART + TE training penalty uses (see TeOptions.penaltyOn). */
const penaltyOn = z.enum(['natural', 'adversarial']);

/** TRADES and MART: β, and where TE's training penalty goes. */
export const betaTrainerOptionsSchema = trainerOptionsSchema
  .extend({
    beta: z.number().min(0).optional(),
    te: z.object({ penaltyOn: penaltyOn.optional() }).strict().optional(),
  })
  .strict();
