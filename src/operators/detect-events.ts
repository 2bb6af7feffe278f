import { filter, map, type Observable, type OperatorFunction } from 'rxjs';
import { AtflowError } from '../core/errors';
import type { EventColumns, EventKind, ExampleColumns, Phase } from '../core/records';
import type { RunEvent, RunEventOf } from '../core/run-event';

/** What the detector remembers per example: enough to resume after a checkpoint. JSON-serialisable. */
export interface EventDetectorState {
  readonly phase: Phase;
  readonly example: number[];
  /** Clean correctness at the example's last observation (0/1). */
  readonly correct_clean: number[];
  /** Adversarial correctness at the last observation (0/1). */
  readonly correct_adv: number[];
  /** First epoch the example was clean-correct, -1 if never. */
  readonly first_learned_epoch: number[];
}

export interface DetectEventsOptions {
  /** Which phase's rows drive the detector (default 'eval': the separate eval-mode pass). */
  readonly phase?: Phase;
  /** Resume from a checkpoint's exported state. */
  readonly state?: EventDetectorState;
}

const UNSEEN = -1;

/**
 * Online memorization-event detection (Toneva et al.'s forgetting events, plus their adversarial
 * twins). For each example, its correctness at this observation is compared with its previous
 * observation (the previous epoch it was evaluated in):
 *   learned          correct_clean 0 → 1        forgotten          correct_clean 1 → 0
 *   robust_learned   correct_adv   0 → 1        robust_forgotten   correct_adv   1 → 0
 * An example's first observation has no predecessor and emits no event; `first_learned_epoch` is
 * the first epoch with correct_clean = 1 (counting the first observation), -1 while never.
 */
export class EventDetector {
  readonly phase: Phase;
  private clean = new Int8Array(1024).fill(UNSEEN);
  private adv = new Int8Array(1024).fill(UNSEEN);
  private firstLearned = new Int32Array(1024).fill(-1);

  constructor(options: DetectEventsOptions = {}) {
    this.phase = options.phase ?? options.state?.phase ?? 'eval';
    if (options.state) this.importState(options.state);
  }

  private ensure(index: number): void {
    if (index < 0 || !Number.isInteger(index))
      throw new AtflowError('DATA_VALUE', `detectEvents: example index must be a non-negative integer, got ${index}`);
    if (index < this.clean.length) return;
    let n = this.clean.length;
    while (n <= index) n *= 2;
    const grow = <T extends Int8Array | Int32Array>(a: T, fillValue: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n).fill(fillValue) as T;
      b.set(a);
      return b;
    };
    this.clean = grow(this.clean, UNSEEN);
    this.adv = grow(this.adv, UNSEEN);
    this.firstLearned = grow(this.firstLearned, -1);
  }

  /** Events of one batch of rows (rows of another phase are ignored). */
  observe(c: ExampleColumns): EventColumns {
    const epochs: number[] = [];
    const examples: number[] = [];
    const kinds: EventKind[] = [];
    const noisy: number[] = [];
    const first: number[] = [];
    if (c.phase !== this.phase) return toColumns(this.phase, epochs, examples, kinds, noisy, first);
    for (let i = 0; i < c.example.length; i++) {
      const ex = c.example[i];
      this.ensure(ex);
      const nowClean = c.correct_clean[i] ? 1 : 0;
      const nowAdv = c.correct_adv[i] ? 1 : 0;
      if (nowClean === 1 && this.firstLearned[ex] === -1) this.firstLearned[ex] = c.epoch;
      const push = (kind: EventKind) => {
        epochs.push(c.epoch);
        examples.push(ex);
        kinds.push(kind);
        noisy.push(c.is_noisy[i] ? 1 : 0);
        first.push(this.firstLearned[ex]);
      };
      const prevClean = this.clean[ex];
      const prevAdv = this.adv[ex];
      if (prevClean !== UNSEEN && prevClean !== nowClean) push(nowClean ? 'learned' : 'forgotten');
      if (prevAdv !== UNSEEN && prevAdv !== nowAdv) push(nowAdv ? 'robust_learned' : 'robust_forgotten');
      this.clean[ex] = nowClean;
      this.adv[ex] = nowAdv;
    }
    return toColumns(this.phase, epochs, examples, kinds, noisy, first);
  }

  /** The state to store in a checkpoint (only examples seen so far). */
  exportState(): EventDetectorState {
    const s: { example: number[]; correct_clean: number[]; correct_adv: number[]; first_learned_epoch: number[] } = {
      example: [],
      correct_clean: [],
      correct_adv: [],
      first_learned_epoch: [],
    };
    for (let i = 0; i < this.clean.length; i++) {
      if (this.clean[i] === UNSEEN) continue;
      s.example.push(i);
      s.correct_clean.push(this.clean[i]);
      s.correct_adv.push(this.adv[i]);
      s.first_learned_epoch.push(this.firstLearned[i]);
    }
    return { phase: this.phase, ...s };
  }

  private importState(s: EventDetectorState): void {
    const n = s.example.length;
    if (s.correct_clean.length !== n || s.correct_adv.length !== n || s.first_learned_epoch.length !== n) {
      throw new AtflowError(
        'RESUME',
        `detectEvents state: columns have different lengths (example ${n}, ` +
          `correct_clean ${s.correct_clean.length}, correct_adv ` +
          `${s.correct_adv.length}, first_learned_epoch ` +
          `${s.first_learned_epoch.length})`,
      );
    }
    for (let i = 0; i < n; i++) {
      const ex = s.example[i];
      this.ensure(ex);
      this.clean[ex] = s.correct_clean[i] ? 1 : 0;
      this.adv[ex] = s.correct_adv[i] ? 1 : 0;
      this.firstLearned[ex] = s.first_learned_epoch[i];
    }
  }
}

function toColumns(phase: Phase, epochs: number[], examples: number[], kinds: EventKind[], noisy: number[], first: number[]): EventColumns {
  return {
    phase,
    epoch: Int32Array.from(epochs),
    example: Int32Array.from(examples),
    event: kinds,
    is_noisy: Uint8Array.from(noisy),
    first_learned_epoch: Int32Array.from(first),
  };
}

/**
 * `examples$.pipe(detectEvents())`: EventColumns for every batch of the driving phase that has at
 * least one event. Pass a `detector` to export its state for checkpoints.
 */
export function detectEvents(
  options: DetectEventsOptions & { detector?: EventDetector } = {},
): OperatorFunction<ExampleColumns, EventColumns> {
  return (source: Observable<ExampleColumns>) => {
    const detector = options.detector ?? new EventDetector(options);
    return source.pipe(
      filter((c) => c.phase === detector.phase),
      map((c) => detector.observe(c)),
      filter((e) => e.example.length > 0),
    );
  };
}

/** The same on the RunEvent stream: 'examples' events in, 'events' events out (to merge back into it). */
export function detectRunEvents(
  options: DetectEventsOptions & { detector?: EventDetector } = {},
): OperatorFunction<RunEvent, RunEventOf<'events'>> {
  return (source) =>
    source.pipe(
      filter((e): e is RunEventOf<'examples'> => e.type === 'examples'),
      map((e) => e.columns),
      detectEvents(options),
      map((columns) => ({ type: 'events' as const, columns })),
    );
}
