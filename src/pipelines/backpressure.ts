import { concatMap, from, type MonoTypeOperatorFunction, type Observable } from 'rxjs';

/**
 * RxJS has no backpressure: `from(plans)` would push every plan through the synchronous operators
 * before a slow sink has written the first batch's rows. `BatchCredits` keeps one batch in flight:
 * `gate()` lets a plan in only after the previous one was `release()`d by the last stage, and yields
 * to the event loop in between (so SIGINT is seen at the next batch boundary).
 */
export class BatchCredits {
  private waiting: (() => void) | null = null;
  private available: number;

  constructor(readonly inFlight = 1) {
    this.available = inFlight;
  }

  private acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return new Promise((r) => setImmediate(r));
    }
    return new Promise((r) => {
      this.waiting = () => {
        this.available--;
        setImmediate(r);
      };
    });
  }

  release(): void {
    this.available++;
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  /** Lets values through one credit at a time. */
  gate<T>(): MonoTypeOperatorFunction<T> {
    return (source: Observable<T>) => source.pipe(concatMap((v) => from(this.acquire().then(() => v))));
  }
}
