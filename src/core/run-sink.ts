import type { RunEvent } from './run-event';

/**
 * A sink that the runner awaits: its `handle` finishing is what lets the next batch in (back-pressure
 * for the heavy writers). `close` runs once, after the last event, whatever the run's outcome.
 */
export interface RunSink {
  readonly name: string;
  handle(ev: RunEvent): void | Promise<void>;
  close?(): void | Promise<void>;
}
