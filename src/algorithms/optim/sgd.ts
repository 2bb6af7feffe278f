import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { AtflowError } from '../../core/errors';
import type { NamedPart } from '../../core/named-part';
import type { NamedVariable } from '../../core/model';

export interface SgdOptions {
  /** Momentum μ (docs/algorithms.md §1: 0.9). 0 disables the buffer. */
  readonly momentum?: number;
  /** Coupled (L2) weight decay: added to the gradient before momentum, as torch.optim.SGD. */
  readonly weightDecay?: number;
  readonly dampening?: number;
  readonly nesterov?: boolean;
}

/** A checkpointable copy of the optimiser state; buffers keyed by the parameter's state_dict name. */
export interface SgdState {
  readonly steps: number;
  readonly momentumBuffers: ReadonlyArray<{ readonly name: string; readonly shape: number[]; readonly values: Float32Array }>;
}

/**
 * SGD with exactly torch.optim.SGD semantics (the authors' optimiser, docs/algorithms.md §1):
 *   d = g + wd·θ;  buf = d on a parameter's first step, then buf = μ·buf + (1 − dampening)·d;
 *   d = nesterov ? d + μ·buf : buf;  θ ← θ − lr·d.
 * A parameter without a gradient in a step is skipped entirely (no decay, buffer untouched), as torch.
 * The learning rate is passed per step so that schedules stay outside the optimiser.
 */
export class Sgd {
  readonly momentum: number;
  readonly weightDecay: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  private readonly buffers = new Map<string, tf.Tensor>();
  private stepCount = 0;

  constructor(
    readonly parameters: readonly NamedVariable[],
    options: SgdOptions = {},
  ) {
    this.momentum = options.momentum ?? 0.9;
    this.weightDecay = options.weightDecay ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    for (const [k, v] of Object.entries({ momentum: this.momentum, weightDecay: this.weightDecay, dampening: this.dampening })) {
      if (!Number.isFinite(v) || v < 0)
        throw new AtflowError('CONFIG', `sgd.${k} must be a finite number ≥ 0, got ${v}`, { field: k, value: v });
    }
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new AtflowError('CONFIG', 'sgd.nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD)');
    }
    const names = new Set<string>();
    for (const p of parameters) {
      if (names.has(p.name)) throw new AtflowError('ARGUMENT', `sgd: duplicate parameter name '${p.name}'`);
      names.add(p.name);
    }
  }

  /** Number of step() calls so far. */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * One update. `grads` maps tf variable names (as tf.variableGrads returns them) to gradients;
   * the caller keeps ownership of `grads`.
   */
  step(grads: Readonly<Record<string, tf.Tensor | null | undefined>>, lr: number): void {
    if (!Number.isFinite(lr) || lr < 0) throw new AtflowError('ARGUMENT', `sgd.step: learning rate must be finite and ≥ 0, got ${lr}`);
    const { momentum: mu, weightDecay: wd, dampening, nesterov } = this;
    for (const { name, variable } of this.parameters) {
      const g = grads[variable.name];
      if (!g) continue;
      const old = this.buffers.get(name);
      const { update, buf } = tf.tidy(() => {
        let d: tf.Tensor = wd !== 0 ? tf.add(g, tf.mul(variable, wd)) : g;
        let b: tf.Tensor | undefined;
        if (mu !== 0) {
          b = old ? tf.add(tf.mul(old, mu), dampening !== 0 ? tf.mul(d, 1 - dampening) : d) : tf.clone(d);
          d = nesterov ? tf.add(d, tf.mul(b, mu)) : b;
        }
        return { update: tf.sub(variable, tf.mul(d, lr)), buf: b };
      });
      variable.assign(update);
      update.dispose();
      if (buf) {
        old?.dispose();
        this.buffers.set(name, buf);
      }
    }
    this.stepCount++;
  }

  exportState(): SgdState {
    const momentumBuffers = this.parameters
      .filter((p) => this.buffers.has(p.name))
      .map((p) => {
        const t = this.buffers.get(p.name)!;
        return { name: p.name, shape: t.shape.slice(), values: t.dataSync() as Float32Array };
      });
    return { steps: this.stepCount, momentumBuffers };
  }

  importState(state: SgdState): void {
    const byName = new Map(this.parameters.map((p) => [p.name, p.variable]));
    for (const b of state.momentumBuffers) {
      const v = byName.get(b.name);
      if (!v) throw new AtflowError('RESUME', `sgd state: momentum buffer for unknown parameter '${b.name}'`, { name: b.name });
      if (v.size !== b.values.length || v.shape.join(',') !== b.shape.join(',')) {
        throw new AtflowError('RESUME', `sgd state: buffer '${b.name}' has shape [${b.shape}], parameter has [${v.shape}]`, {
          name: b.name,
        });
      }
    }
    this.disposeBuffers();
    for (const b of state.momentumBuffers) this.buffers.set(b.name, tf.tensor(b.values, b.shape, 'float32'));
    this.stepCount = state.steps;
  }

  private disposeBuffers(): void {
    for (const t of this.buffers.values()) t.dispose();
    this.buffers.clear();
  }

  /** Frees the momentum buffers. */
  dispose(): void {
    this.disposeBuffers();
  }
}

/**
 * What a config's `optimizer` block gives SGD (beside `name` and `lr`, which is the schedule's): the
 * authors' momentum 0.9 and weight decay 5·10⁻⁴ (docs/algorithms.md §1).
 */
export const sgdOptionsSchema = z
  .object({
    momentum: z.number().min(0).max(1).default(0.9),
    weightDecay: z.number().min(0).default(5e-4),
    dampening: z.number().min(0).optional(),
    nesterov: z.boolean().optional(),
  })
  .strict();

/** What the registry's 'optimizer' factories get: the configured options and the model's parameters. */
export interface OptimizerOptions extends SgdOptions {
  readonly parameters: readonly NamedVariable[];
}

/** Sgd as the registry's 'sgd' (kind 'optimizer'); another optimiser is a class with Sgd's methods (subclass it in TypeScript). */
export const sgdEntry: NamedPart<Sgd, OptimizerOptions> = {
  name: 'sgd',
  options: sgdOptionsSchema,
  create: ({ parameters, ...options }) => new Sgd(parameters, options),
};
