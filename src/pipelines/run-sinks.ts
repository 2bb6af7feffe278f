import { Subject, type Observable } from 'rxjs';
import type { RunEvent } from '../core/run-event';

/**
 * A sink that the runner awaits: its `handle` finishing is what lets the next batch in (back-pressure
 * for the heavy writers). `close` runs once, after the last event, whatever the run's outcome.
 */
export interface RunSink {
  readonly name: string;
  handle(ev: RunEvent): void | Promise<void>;
  close?(): void | Promise<void>;
}

/**
 * The run's event hub: one multicast Observable (`events$`) that anyone can subscribe to (progress
 * bars, user code, tests) plus awaited sinks. Adding a sink never touches the operators.
 */
export class RunEventHub {
  private readonly subject = new Subject<RunEvent>();
  readonly events$: Observable<RunEvent> = this.subject.asObservable();
  private closed = false;

  constructor(private readonly sinks: readonly RunSink[]) {}

  async emit(ev: RunEvent): Promise<void> {
    for (const s of this.sinks) await s.handle(ev);
    this.subject.next(ev);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let first: unknown;
    for (const s of this.sinks) {
      try {
        await s.close?.();
      } catch (e) {
        first ??= e;
      }
    }
    this.subject.complete();
    if (first) throw first;
  }
}
