import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { concat, firstValueFrom, from, lastValueFrom, throwError, toArray } from 'rxjs';
import type { RunEvent } from '../../src/core/run-event';
import { sinkOperator, type RunSink, type RunSinkWithResult } from '../../src/core/run-sink';
import { summarySink } from '../../src/logs/summary';
import { arrowSink } from '../../src/logs/arrow-sink';
import { parquetSink } from '../../src/logs/parquet-sink';
import { syntheticRun } from '../logs/synthetic-run';

/**
 * Issue 23: one RunSink → operator adapter. The four built-in sinks' operators were four hand-written
 * Observables with four error policies (the summary's never closed its writer on an error, the Arrow
 * one handled events synchronously, ...); a sink of one's own had none. sinkOperator is the one
 * adapter, and parquetSink, arrowSink, summarySink and progressSink are it.
 */

/** A slow asynchronous sink that records what happened to it, in order. */
class Recorder implements RunSinkWithResult<string[]> {
  readonly name = 'recorder';
  readonly log: string[] = [];
  private busy = false;
  constructor(private readonly failOn?: RunEvent['type']) {}
  async handle(ev: RunEvent): Promise<void> {
    if (this.busy) this.log.push('OVERLAP');
    this.busy = true;
    await new Promise((r) => setTimeout(r, 2));
    this.busy = false;
    if (ev.type === this.failOn) throw new Error(`failed on ${ev.type}`);
    this.log.push(ev.type);
  }
  async close(): Promise<void> {
    this.log.push('close');
  }
  abort(e: unknown): void {
    this.log.push(`abort: ${(e as Error).message}`);
  }
  result(): string[] {
    return [...this.log];
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-sink-op-'));
const events = (runDir: string) => syntheticRun({ runDir, runId: 'r', n: 20, epochs: 2, batch: 10 });

describe('sinkOperator: a RunSink as an operator', () => {
  it('handles every event in order, one at a time, then closes and emits the result', async () => {
    const evs = events(path.join(dir, 'a'));
    const result = await firstValueFrom(from(evs).pipe(sinkOperator(() => new Recorder())));
    expect(result).toEqual([...evs.map((e) => e.type), 'close']);
  });

  it('a sink that throws is aborted, sees nothing after, and the error goes on', async () => {
    const r = new Recorder('epoch-end');
    await expect(lastValueFrom(from(events(path.join(dir, 'b'))).pipe(sinkOperator(() => r)))).rejects.toThrow('failed on epoch-end');
    expect(r.log[r.log.length - 1]).toBe('abort: failed on epoch-end');
    expect(r.log).not.toContain('close');
    expect(r.log.filter((t) => t === 'epoch-end')).toEqual([]);
  });

  it('an upstream error aborts the sink after the events before it, and goes on', async () => {
    const r = new Recorder();
    const evs = events(path.join(dir, 'c')).slice(0, 3);
    await expect(
      lastValueFrom(
        concat(
          from(evs),
          throwError(() => new Error('upstream')),
        ).pipe(sinkOperator(() => r)),
      ),
    ).rejects.toThrow('upstream');
    expect(r.log).toEqual([...evs.map((e) => e.type), 'abort: upstream']);
  });

  it('a sink without abort is closed on an error; without result the operator emits nothing', async () => {
    const log: string[] = [];
    const sink: RunSink = { name: 's', handle: (ev) => void log.push(ev.type), close: () => void log.push('close') };
    expect(
      await lastValueFrom(
        from(events(path.join(dir, 'd')).slice(0, 2)).pipe(
          sinkOperator(() => sink),
          toArray(),
        ),
      ),
    ).toEqual([]);
    await expect(lastValueFrom(throwError(() => new Error('x')).pipe(sinkOperator(() => sink)))).rejects.toThrow('x');
    expect(log).toEqual(['run-start', 'labels', 'close', 'close']);
  });
});

describe('the built-in sinks through the one adapter, on a stream that breaks after an epoch', () => {
  const broken = (runDir: string) =>
    concat(
      from(events(runDir).filter((e) => e.type !== 'run-end')),
      throwError(() => new Error('broke')),
    );

  it('summarySink leaves a summary.json saying the run is incomplete', async () => {
    const runDir = path.join(dir, 'summary');
    await expect(lastValueFrom(broken(runDir).pipe(summarySink()))).rejects.toThrow('broke');
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'))).toMatchObject({
      run_id: 'r',
      status: 'incomplete',
      epochs: 2,
    });
  });

  it('arrowSink and parquetSink leave complete files and no temp files', async () => {
    const runDir = path.join(dir, 'tables');
    await expect(lastValueFrom(broken(runDir).pipe(arrowSink()))).rejects.toThrow('broke');
    await expect(lastValueFrom(broken(runDir).pipe(parquetSink()))).rejects.toThrow('broke');
    const all: string[] = [];
    const walk = (d: string) =>
      fs.readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : all.push(e.name)));
    walk(runDir);
    expect(all.filter((f) => /\.tmp$/.test(f))).toEqual([]);
    expect(all).toEqual(expect.arrayContaining(['labels.parquet', 'spec.json', 'epochs.arrows']));
  });
});
