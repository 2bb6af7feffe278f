import { z } from 'zod';
import { AtflowError } from '../../core/errors';
import type { NamedPart } from '../../core/named-part';

/**
 * Learning rate per 1-based epoch. The authors step the torch scheduler once per epoch, after the
 * training loop (docs/algorithms.md §1, §12.15), so epoch e trains with the rate after e − 1 scheduler steps.
 */
export type LrSchedule = (epoch: number) => number;

export type LrScheduleSpec =
  | { readonly type: 'constant'; readonly lr: number }
  /** torch MultiStepLR: lr·γ^(number of milestones m with m ≤ e − 1). [100,150] → 0.1 for 1–100, 0.01 for 101–150. */
  | { readonly type: 'multistep'; readonly lr: number; readonly milestones: readonly number[]; readonly gamma?: number }
  /** torch StepLR: lr·γ^floor((e − 1)/stepSize). stepSize 100 → 0.1 for 1–100, 0.01 for 101–200. */
  | { readonly type: 'step'; readonly lr: number; readonly stepSize: number; readonly gamma?: number }
  /** torch CosineAnnealingLR(T_max, eta_min) stepped per epoch: η_min + (lr − η_min)(1 + cos(π(e − 1)/T_max))/2. */
  | { readonly type: 'cosine'; readonly lr: number; readonly tMax: number; readonly etaMin?: number };

function checkEpoch(epoch: number): void {
  if (!Number.isInteger(epoch) || epoch < 1)
    throw new AtflowError('ARGUMENT', `epoch must be an integer ≥ 1 (epochs are 1-based), got ${epoch}`);
}

function positive(field: string, v: number, allowZero = false): void {
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new AtflowError('CONFIG', `lrSchedule.${field} must be a finite number ${allowZero ? '≥' : '>'} 0, got ${v}`, {
      field,
      value: v,
    });
  }
}

export function makeLrSchedule(spec: LrScheduleSpec): LrSchedule {
  positive('lr', spec.lr, true);
  switch (spec.type) {
    case 'constant':
      return (e) => (checkEpoch(e), spec.lr);
    case 'multistep': {
      const gamma = spec.gamma ?? 0.1;
      positive('gamma', gamma);
      const ms = [...spec.milestones];
      ms.forEach((m, i) => {
        if (!Number.isInteger(m) || m < 1) throw new AtflowError('CONFIG', `lrSchedule.milestones[${i}] must be an integer ≥ 1, got ${m}`);
      });
      return (e) => {
        checkEpoch(e);
        // torch counts repeated milestones twice (a Counter), so does this
        const n = ms.filter((m) => m <= e - 1).length;
        return spec.lr * Math.pow(gamma, n);
      };
    }
    case 'step': {
      const gamma = spec.gamma ?? 0.1;
      positive('gamma', gamma);
      if (!Number.isInteger(spec.stepSize) || spec.stepSize < 1)
        throw new AtflowError('CONFIG', `lrSchedule.stepSize must be an integer ≥ 1, got ${spec.stepSize}`);
      return (e) => (checkEpoch(e), spec.lr * Math.pow(gamma, Math.floor((e - 1) / spec.stepSize)));
    }
    case 'cosine': {
      const etaMin = spec.etaMin ?? 0;
      positive('etaMin', etaMin, true);
      if (!Number.isInteger(spec.tMax) || spec.tMax < 1)
        throw new AtflowError('CONFIG', `lrSchedule.tMax must be an integer ≥ 1, got ${spec.tMax}`);
      return (e) => (checkEpoch(e), etaMin + ((spec.lr - etaMin) * (1 + Math.cos((Math.PI * (e - 1)) / spec.tMax))) / 2);
    }
    default: {
      const t = (spec as { type?: unknown }).type;
      throw new AtflowError('CONFIG', `lrSchedule.type '${String(t)}' is unknown; expected one of constant, multistep, step, cosine`, {
        value: t,
      });
    }
  }
}

/**
 * What a config's `schedule` block gives a schedule (beside `name`), shared by the built-in ones; a
 * schedule with options of its own extends it. The authors' MultiStepLR milestones [100, 150], γ = 0.1.
 */
export const scheduleOptionsSchema = z
  .object({
    milestones: z.array(z.number().int().min(1)).default([100, 150]),
    stepSize: z.number().int().min(1).optional(),
    gamma: z.number().positive().default(0.1),
  })
  .strict();

/** What the registry's 'schedule' factories get: the configured options, the base rate (optimizer.lr) and the run's epochs. */
export interface ScheduleOptions extends z.output<typeof scheduleOptionsSchema> {
  readonly lr: number;
  /** The run's epochs (cosine's T_max). */
  readonly tMax: number;
}

/** The built-in schedules as registry entries (kind 'schedule'), in the order a config lists them. */
export const multistepScheduleEntry: NamedPart<LrSchedule, ScheduleOptions> = {
  name: 'multistep',
  options: scheduleOptionsSchema,
  create: (o) => makeLrSchedule({ type: 'multistep', lr: o.lr, milestones: o.milestones, gamma: o.gamma }),
};
export const stepScheduleEntry: NamedPart<LrSchedule, ScheduleOptions> = {
  name: 'step',
  options: scheduleOptionsSchema,
  // torch StepLR needs a step size; 100 is the authors' first milestone
  create: (o) => makeLrSchedule({ type: 'step', lr: o.lr, stepSize: o.stepSize ?? 100, gamma: o.gamma }),
};
export const cosineScheduleEntry: NamedPart<LrSchedule, ScheduleOptions> = {
  name: 'cosine',
  options: scheduleOptionsSchema,
  create: (o) => makeLrSchedule({ type: 'cosine', lr: o.lr, tMax: o.tMax }),
};
export const constantScheduleEntry: NamedPart<LrSchedule, ScheduleOptions> = {
  name: 'constant',
  options: scheduleOptionsSchema,
  create: (o) => makeLrSchedule({ type: 'constant', lr: o.lr }),
};
