import * as fs from 'fs';
import * as path from 'path';
import { Observable, OperatorFunction } from 'rxjs';
import type { RunEvent, RunEventOf } from '../core/run-event';
import { AtflowError } from '../core/errors';
import type { ColumnDef } from './columns';
import { ParquetStreamWriter, readParquetTable, writeFileAtomic, DEFAULT_ROW_GROUP_SIZE } from './parquet-writer';
import {
  COMPLEXITY_COLUMNS,
  complexityRows,
  epochPartition,
  epochRow,
  EPOCHS_COLUMNS,
  EVENTS_COLUMNS,
  eventsRow,
  EXAMPLES_COLUMNS,
  examplesRow,
  LABELS_COLUMNS,
  labelsRow,
  STEPS_COLUMNS,
  stepRow,
} from './tables';
import { runVersions } from './versions';

export interface ParquetSinkOptions {
  /** Rows per row group (default 65,536). */
  readonly rowGroupSize?: number;
  /** Write spec.json at run-start (default true). */
  readonly writeSpec?: boolean;
  /** Write `_SUCCESS` after run-end 'completed' (default true). */
  readonly successMarker?: boolean;
  /** Clock for the `time` columns (tests pin it). */
  readonly now?: () => number;
}

/** What the sink wrote, emitted once when the event stream completes. */
export interface ParquetSinkResult {
  readonly runDir: string;
  /** Table name → file paths written (examples: every part file). */
  readonly files: Readonly<Record<string, readonly string[]>>;
  readonly rows: Readonly<Record<string, number>>;
  readonly success: boolean;
}

type SingleTable = 'events' | 'epochs' | 'steps' | 'complexity' | 'labels';
const SINGLE_TABLES: Readonly<Record<SingleTable, readonly ColumnDef[]>> = {
  events: EVENTS_COLUMNS,
  epochs: EPOCHS_COLUMNS,
  steps: STEPS_COLUMNS,
  complexity: COMPLEXITY_COLUMNS,
  labels: LABELS_COLUMNS,
};

/** The key-value metadata put in every Parquet file of the run. */
export function runMetadata(start: RunEventOf<'run-start'>): Record<string, string> {
  return {
    'atflow.run_id': start.runId,
    'atflow.seed': String(start.seed),
    'atflow.started_at': start.startedAt,
    'atflow.backend': JSON.stringify(start.backend),
    'atflow.versions': JSON.stringify(runVersions()),
    'atflow.spec': JSON.stringify(start.spec ?? null),
  };
}

/** spec.json: the validated config plus versions, backend, seed and the run's shape. */
export function writeSpecJson(start: RunEventOf<'run-start'>): string {
  const file = path.join(start.runDir, 'spec.json');
  const doc = {
    run_id: start.runId,
    seed: start.seed,
    started_at: start.startedAt,
    epochs: start.epochs,
    first_epoch: start.firstEpoch,
    num_classes: start.numClasses,
    train_size: start.trainSize,
    backend: start.backend,
    versions: runVersions(),
    spec: start.spec ?? null,
  };
  writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n');
  return file;
}

/**
 * The run folder writer behind `parquetSink`. Handles one event at a time (the sink serialises them).
 * Layout: examples/epoch=NNNN/part-<phase>.parquet (one file per epoch and phase, closed at that
 * epoch's epoch-end), events/epochs/steps/complexity/labels.parquet (closed at run-end), spec.json,
 * and _SUCCESS last. Every file appears atomically (temp + fsync + rename).
 */
export class ParquetRunWriter {
  readonly name = 'parquet';
  private start: RunEventOf<'run-start'> | null = null;
  private meta: Record<string, string> = {};
  private readonly tables = new Map<SingleTable, ParquetStreamWriter>();
  private readonly parts = new Map<string, { epoch: number; writer: ParquetStreamWriter }>();
  private readonly partCount = new Map<string, number>();
  private readonly files: Record<string, string[]> = {};
  private readonly rows: Record<string, number> = {};
  private success = false;

  constructor(private readonly options: ParquetSinkOptions = {}) {}

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  private requireStart(ev: RunEvent): RunEventOf<'run-start'> {
    if (!this.start) throw new AtflowError('ARGUMENT', `parquet sink: '${ev.type}' event before 'run-start'`);
    return this.start;
  }

  async handle(ev: RunEvent): Promise<void> {
    switch (ev.type) {
      case 'run-start': {
        this.start = ev;
        this.meta = runMetadata(ev);
        fs.mkdirSync(ev.runDir, { recursive: true });
        fs.rmSync(path.join(ev.runDir, '_SUCCESS'), { force: true });
        if (this.options.writeSpec ?? true) this.record('spec', writeSpecJson(ev), 0);
        return;
      }
      case 'labels': {
        const s = this.requireStart(ev);
        const w = await this.table('labels');
        await w.append(labelsRow(s.runId, ev.example, ev.label_true, ev.label_used), ev.example.length);
        return;
      }
      case 'examples': {
        const s = this.requireStart(ev);
        const c = ev.columns;
        const w = await this.part(c.epoch, c.phase);
        await w.append(examplesRow(s.runId, c), c.example.length);
        return;
      }
      case 'events': {
        const s = this.requireStart(ev);
        const w = await this.table('events');
        await w.append(eventsRow(s.runId, ev.columns), ev.columns.example.length);
        return;
      }
      case 'step': {
        const s = this.requireStart(ev);
        await (await this.table('steps')).append(stepRow(s.runId, ev.record, this.now), 1);
        return;
      }
      case 'epoch-end': {
        const s = this.requireStart(ev);
        await (await this.table('epochs')).append(epochRow(s.runId, ev.record, this.now), 1);
        await this.closeParts((e) => e <= ev.record.epoch);
        return;
      }
      case 'complexity': {
        const s = this.requireStart(ev);
        const { row, count } = complexityRows(s.runId, ev.epoch, ev.measures);
        await (await this.table('complexity')).append(row, count);
        return;
      }
      case 'run-end': {
        this.requireStart(ev);
        await this.closeAll();
        if (ev.status === 'completed' && (this.options.successMarker ?? true)) {
          const marker = path.join(this.start!.runDir, '_SUCCESS');
          writeFileAtomic(marker, '');
          this.record('_SUCCESS', marker, 0);
          this.success = true;
        }
        return;
      }
      default:
        return; // epoch-start, checkpoint, warning: nothing to store here
    }
  }

  /** Closes every open file (stream completed without run-end: what was logged is kept, no _SUCCESS). */
  async closeAll(): Promise<void> {
    await this.closeParts(() => true);
    for (const [name, w] of [...this.tables]) {
      this.tables.delete(name);
      this.record(name, w.path, await w.close());
    }
  }

  /** RunSink close: after the last event, whatever the outcome (a no-op after run-end). */
  async close(): Promise<void> {
    await this.closeAll();
  }

  /** Drops the temp files of every open writer; files already in place stay as they were. */
  async abort(): Promise<void> {
    const all = [...this.parts.values()].map((p) => p.writer).concat([...this.tables.values()]);
    this.parts.clear();
    this.tables.clear();
    await Promise.all(all.map((w) => w.abort()));
  }

  result(): ParquetSinkResult {
    return { runDir: this.start?.runDir ?? '', files: this.files, rows: this.rows, success: this.success };
  }

  private record(table: string, file: string, rows: number): void {
    (this.files[table] ??= []).push(file);
    this.rows[table] = (this.rows[table] ?? 0) + rows;
  }

  private async table(name: SingleTable): Promise<ParquetStreamWriter> {
    let w = this.tables.get(name);
    if (w) return w;
    const s = this.start!;
    const file = path.join(s.runDir, `${name}.parquet`);
    w = await ParquetStreamWriter.open(file, SINGLE_TABLES[name], { metadata: this.meta, rowGroupSize: this.options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE });
    this.tables.set(name, w);
    // A resumed run keeps the rows of the epochs before the one it restarts at.
    if (name !== 'labels' && s.firstEpoch > 1 && fs.existsSync(file)) await carryOver(w, file, s.firstEpoch);
    return w;
  }

  private async part(epoch: number, phase: string): Promise<ParquetStreamWriter> {
    const key = `${epoch}/${phase}`;
    const open = this.parts.get(key);
    if (open) return open.writer;
    const k = this.partCount.get(key) ?? 0;
    this.partCount.set(key, k + 1);
    const file = path.join(this.start!.runDir, 'examples', epochPartition(epoch), k === 0 ? `part-${phase}.parquet` : `part-${phase}-${k}.parquet`);
    const writer = await ParquetStreamWriter.open(file, EXAMPLES_COLUMNS, { metadata: this.meta, rowGroupSize: this.options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE });
    this.parts.set(key, { epoch, writer });
    return writer;
  }

  private async closeParts(which: (epoch: number) => boolean): Promise<void> {
    for (const [key, p] of [...this.parts]) {
      if (!which(p.epoch)) continue;
      this.parts.delete(key);
      this.record('examples', p.writer.path, await p.writer.close());
    }
  }
}

async function carryOver(w: ParquetStreamWriter, file: string, firstEpoch: number): Promise<void> {
  const old = readParquetTable(file);
  const epoch = old.getChild('epoch');
  if (!epoch) return;
  const keep: number[] = [];
  for (let i = 0; i < old.numRows; i++) if (Number(epoch.get(i)) < firstEpoch) keep.push(i);
  if (keep.length === 0) return;
  const rows = keep.map((i) => old.get(i)!.toJSON() as Record<string, unknown>);
  const cols: Record<string, import('./columns').ColumnValues> = {};
  for (const d of w.defs) {
    const vals = rows.map((r) => r[d.name]);
    cols[d.name] =
      d.type === 'utf8'
        ? vals.map((v) => String(v))
        : d.type === 'int32'
          ? Int32Array.from(vals, (v) => Number(v))
          : d.type === 'bool'
            ? Uint8Array.from(vals, (v) => (v ? 1 : 0))
            : d.type === 'float32'
              ? Float32Array.from(vals, (v) => (v === null ? NaN : Number(v)))
              : Float64Array.from(vals, (v) => (v === null ? NaN : Number(v)));
  }
  await w.append(cols, keep.length);
}

/**
 * The Parquet sink: `events$.pipe(parquetSink())` writes the run folder of DESIGN.md and emits one
 * ParquetSinkResult when the event stream completes. Events are handled strictly in order; an error
 * upstream aborts the open files (their temp files are removed; files already renamed stay).
 */
export function parquetSink(options: ParquetSinkOptions = {}): OperatorFunction<RunEvent, ParquetSinkResult> {
  return (source) =>
    new Observable<ParquetSinkResult>((subscriber) => {
      const writer = new ParquetRunWriter(options);
      let chain: Promise<void> = Promise.resolve();
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        void writer.abort().finally(() => subscriber.error(e));
      };
      const sub = source.subscribe({
        next: (ev) => {
          chain = chain.then(() => (failed ? undefined : writer.handle(ev))).catch((e) => {
            fail(e);
            sub?.unsubscribe();
          });
        },
        error: (e) => {
          chain = chain.then(() => fail(e));
        },
        complete: () => {
          chain = chain
            .then(() => (failed ? undefined : writer.closeAll()))
            .then(() => {
              if (failed) return;
              subscriber.next(writer.result());
              subscriber.complete();
            })
            .catch(fail);
        },
      });
      return () => sub.unsubscribe();
    });
}
