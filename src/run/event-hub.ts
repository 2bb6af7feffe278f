import { AsyncLocalStorage } from 'async_hooks';
import { config as rxjsConfig, Subject, type Observable } from 'rxjs';
import type { RunEvent } from '../core/run-event';
import type { RunSink } from '../core/run-sink';

/**
 * RxJS reports an error thrown inside a subscriber's handler (or an error notification nobody handles)
 * on a later timer, by throwing it there: an uncaught exception that kills the process mid-run, with no
 * run-end and no sink closed. Those reports go to the run whose observer caused them, and only those:
 * the hub hands each event to its observers inside `deliveringFor.run(hub, …)`, and RxJS schedules its
 * report from inside that call, so the report's timer carries the hub (AsyncLocalStorage follows timers).
 * A report that carries no hub — rxjs code outside any run — goes to the handler that was set before
 * (by default: the throw), as if no run were open. The dispatcher is set while a hub is open and the
 * previous handler put back when the last one closes.
 */
const deliveringFor = new AsyncLocalStorage<RunEventHub>();
const openHubs = new Set<RunEventHub>();
let previousHandler: ((err: unknown) => void) | null = null;

function dispatchUnhandledError(err: unknown): void {
  const hub = deliveringFor.getStore();
  if (hub && openHubs.has(hub)) {
    hub.observerFailed(err);
    return;
  }
  if (previousHandler) previousHandler(err);
  else throw err;
}

function routeUnhandledErrors(hub: RunEventHub, open: boolean): void {
  if (open) {
    if (openHubs.size === 0) {
      previousHandler = rxjsConfig.onUnhandledError;
      rxjsConfig.onUnhandledError = dispatchUnhandledError;
    }
    openHubs.add(hub);
  } else if (openHubs.delete(hub) && openHubs.size === 0) {
    // a handler someone set while the run went is theirs to keep
    if (rxjsConfig.onUnhandledError === dispatchUnhandledError) rxjsConfig.onUnhandledError = previousHandler;
    previousHandler = null;
  }
}

/** One macrotask turn: RxJS's error reports (timers scheduled earlier) have run after it. */
const nextMacrotask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * The run's event hub: one multicast Observable (`events$`) that anyone can subscribe to (progress
 * bars, user code, tests) plus awaited sinks. Adding a sink never touches the operators. An observer
 * that throws fails the run at its next event (the runner then emits run-end and closes the sinks).
 */
export class RunEventHub {
  private readonly subject = new Subject<RunEvent>();
  readonly events$: Observable<RunEvent> = this.subject.asObservable();
  private closed = false;
  private observerError: { error: unknown } | null = null;

  constructor(private readonly sinks: readonly RunSink[]) {
    routeUnhandledErrors(this, true);
  }

  /**
   * Runs `attach` (which subscribes observers to `events$`) as this run's: errors RxJS reports from
   * what it sets up, timers included, fail this run.
   */
  observe(attach: (events$: Observable<RunEvent>) => void): void {
    deliveringFor.run(this, () => attach(this.events$));
  }

  /** Called with an error an observer of `events$` threw; the first one fails the run. */
  observerFailed(error: unknown): void {
    this.observerError ??= { error };
  }

  private throwIfObserverFailed(): void {
    if (this.observerError) throw this.observerError.error;
  }

  /** Delivers an event to the sinks then the observers; throws first if an observer has failed. */
  async emit(ev: RunEvent): Promise<void> {
    // the last event waits for reports still on their way, so that no observer error goes unseen
    if (ev.type === 'run-end') await nextMacrotask();
    this.throwIfObserverFailed();
    await this.deliver(ev);
  }

  /** Delivers an event whatever happened before (the runner's `run-end` of a failed run). */
  async deliver(ev: RunEvent): Promise<void> {
    for (const s of this.sinks) await s.handle(ev);
    deliveringFor.run(this, () => this.subject.next(ev));
  }

  /**
   * Closes every sink (each whatever the others did) and completes `events$`; throws the first sink
   * error, or an observer error that arrived after the last event.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let first: { error: unknown } | null = null;
    for (const s of this.sinks) {
      try {
        await s.close?.();
      } catch (e) {
        first ??= { error: e };
      }
    }
    deliveringFor.run(this, () => this.subject.complete());
    await nextMacrotask();
    routeUnhandledErrors(this, false);
    first ??= this.observerError;
    if (first) throw first.error;
  }
}
