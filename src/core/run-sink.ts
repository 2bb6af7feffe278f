import { Observable, type OperatorFunction } from 'rxjs';
import type { RunEvent } from './run-event';

/**
 * A sink that the runner awaits: its `handle` finishing is what lets the next batch in (back-pressure
 * for the heavy writers). `close` runs once, after the last event, whatever the run's outcome.
 */
export interface RunSink {
  readonly name: string;
  handle(ev: RunEvent): void | Promise<void>;
  close?(): void | Promise<void>;
  /**
   * The event stream broke before its end (an error instead of run-end and completion): drop what is
   * half-written, keep what is complete. Without it, `close` runs instead.
   */
  abort?(error: unknown): void | Promise<void>;
}

/** A sink with something to hand on when its stream completes (the files it wrote, the summary). */
export interface RunSinkWithResult<R> extends RunSink {
  result(): R | null;
}

/**
 * The one adapter from a RunSink to an RxJS operator: `events$.pipe(sinkOperator(() => mySink))`.
 * Events are handled strictly in order, each awaited before the next; when the stream completes the
 * sink is closed and its result (if it has one, and it is not null) emitted. A sink that throws, or
 * an error upstream, aborts the sink (`abort`, else `close`) and the error goes on downstream. An
 * unsubscribe before the end aborts it too. Every built-in sink's operator (parquetSink, arrowSink,
 * summarySink, progressSink) is this adapter over its sink.
 */
export function sinkOperator<R = never>(make: () => RunSink | RunSinkWithResult<R>): OperatorFunction<RunEvent, R> {
  return (source) =>
    new Observable<R>((subscriber) => {
      const sink = make();
      let chain: Promise<void> = Promise.resolve();
      let finished = false;
      const abort = async (e: unknown): Promise<void> => {
        try {
          await (sink.abort ? sink.abort(e) : sink.close?.());
        } catch {
          /* the first error is the one that goes on */
        }
      };
      const fail = (e: unknown): void => {
        if (finished) return;
        finished = true;
        upstream.unsubscribe();
        void abort(e).then(() => subscriber.error(e));
      };
      const upstream = source.subscribe({
        next: (ev) => {
          chain = chain.then(() => (finished ? undefined : sink.handle(ev))).catch(fail);
        },
        error: (e) => {
          chain = chain.then(() => fail(e));
        },
        complete: () => {
          chain = chain
            .then(async () => {
              if (finished) return;
              await sink.close?.();
              finished = true;
              const result = 'result' in sink ? sink.result() : null;
              if (result !== null && result !== undefined) subscriber.next(result);
              subscriber.complete();
            })
            .catch(fail);
        },
      });
      return () => {
        upstream.unsubscribe();
        if (!finished) {
          finished = true;
          void chain.then(() => abort(new Error('unsubscribed')));
        }
      };
    });
}
