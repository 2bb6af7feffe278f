import * as arrow from 'apache-arrow';
import * as fs from 'fs';
import * as path from 'path';
import type { OperatorFunction } from 'rxjs';
import type { RunEvent, RunEventOf } from '../core/run-event';
import { sinkOperator } from '../core/run-sink';
import { AtflowError } from '../core/errors';
import { faultArmed, faultPoint } from '../core/fault-injection';
import { arrowSchema, type ColumnDef, type ColumnValues, makeRecordBatch } from './columns';
import { type CarriedBatch, keptBatches } from './arrow-stream-prefix';
import { type TableName, TABLES } from './tables';
import { RunTableWriter, type Carry, type RunTableFormat, type TableRows } from './run-table-writer';
import { runMetadata } from './parquet-sink';
import { abortTemp, commitTemp, isTempName, openTemp } from '../core/durable-file';
import { removeEntry, type RunFolder } from '../store/run-folder';

const EOS_BYTES = 8; // continuation marker 0xFFFFFFFF + zero length

/**
 * An Arrow IPC *stream* file written message by message: the schema once, then one record batch
 * per append, each flushed to disk at once, so `tail`-style readers (apache-arrow, pyarrow's
 * `ipc.open_stream`, polars `read_ipc_stream`) see every batch as soon as it is logged. `close()`
 * appends the end-of-stream marker. Unlike the Parquet files this one grows in place (that is the
 * point of live tailing), so a crash leaves a valid stream without its end marker (or with a torn last
 * batch, which a resume's `keptBatches` leaves out). Given `carry`, the stream starts as a temp file
 * holding those batches, renamed over `path` once durable: a kill then loses nothing.
 */
export class ArrowStreamFileWriter {
  private readonly fd: number;
  private readonly headerLength: number;
  private readonly header: Uint8Array;
  private rows = 0;
  private closed = false;

  constructor(
    readonly path: string,
    readonly defs: readonly ColumnDef[],
    metadata?: Record<string, string>,
    /** Record batches to start the stream with (a resume's kept rows): written to a temp file first. */
    carry?: Iterable<CarriedBatch>,
  ) {
    this.schema = arrowSchema(defs, metadata);
    fs.mkdirSync(path_.dirname(this.path), { recursive: true });
    const empty = arrow.tableToIPC(new arrow.Table(this.schema), 'stream');
    this.headerLength = empty.length - EOS_BYTES;
    this.header = empty.slice(0, this.headerLength);
    if (!carry) {
      this.fd = openForWriting(this.path);
      fs.writeSync(this.fd, this.header);
      return;
    }
    // the kept rows go to a temp file that replaces the old stream only once complete and durable, so a
    // kill while it is written leaves the old stream as it was; the descriptor follows the rename, and
    // this session's batches are appended after the kept ones
    const tmp = openTemp(this.path);
    this.fd = tmp.fd;
    try {
      fs.writeSync(this.fd, this.header);
      for (const b of carry) {
        fs.writeSync(this.fd, b.message);
        this.rows += b.rows;
      }
      commitTemp(tmp, { keepOpen: true });
    } catch (e) {
      abortTemp(tmp);
      if (e instanceof AtflowError) throw e; // the old stream is unreadable as this table (its columns differ)
      throw new AtflowError('IO', `cannot rewrite ${this.path}: ${(e as Error).message}`, { path: this.path });
    }
  }

  private readonly schema: arrow.Schema;

  get rowsWritten(): number {
    return this.rows;
  }

  append(cols: Readonly<Record<string, ColumnValues | number | string>>, count: number): void {
    if (this.closed) throw new AtflowError('IO', `arrow writer for ${this.path} is already closed`);
    if (count === 0) return;
    const full: Record<string, ColumnValues> = {};
    for (const d of this.defs) full[d.name] = broadcast(d, cols[d.name], count);
    const ipc = arrow.tableToIPC(new arrow.Table(makeRecordBatch(this.schema, this.defs, full, count)), 'stream');
    // The stream encoding of a one-batch table is [schema message][batch message][EOS]; keep the batch.
    for (let i = 0; i < this.headerLength; i++) {
      if (ipc[i] !== this.header[i]) throw new AtflowError('IO', `arrow writer for ${this.path}: schema message changed between batches`);
    }
    const message = ipc.subarray(this.headerLength, ipc.length - EOS_BYTES);
    if (faultArmed('arrow-append')) {
      // the crash-safety test's kill inside a batch write: half a message on disk
      const half = message.length >> 1;
      fs.writeSync(this.fd, message.subarray(0, half));
      faultPoint('arrow-append');
      fs.writeSync(this.fd, message.subarray(half));
    } else {
      fs.writeSync(this.fd, message);
    }
    this.rows += count;
  }

  /** Makes every batch appended so far durable (at epoch-end, before the epoch's checkpoint). */
  sync(): void {
    if (!this.closed) fs.fsyncSync(this.fd);
  }

  close(): number {
    if (this.closed) return this.rows;
    this.closed = true;
    fs.writeSync(this.fd, Int32Array.of(-1, 0));
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    return this.rows;
  }
}
const path_ = path;

function openForWriting(file: string): number {
  try {
    return fs.openSync(file, 'w');
  } catch (e) {
    throw new AtflowError('IO', `cannot create ${file}: ${(e as Error).message}`, { path: file });
  }
}

function broadcast(d: ColumnDef, v: ColumnValues | number | string | undefined, n: number): ColumnValues {
  if (v === undefined) throw new AtflowError('ARGUMENT', `column '${d.name}' is missing`);
  if (typeof v === 'string') return { codes: new Int32Array(n), table: [v] };
  if (typeof v === 'number') {
    const out =
      d.type === 'int32'
        ? new Int32Array(n)
        : d.type === 'float32'
          ? new Float32Array(n)
          : d.type === 'bool'
            ? new Uint8Array(n)
            : new Float64Array(n);
    out.fill(v);
    return out;
  }
  return v;
}

export interface ArrowSinkOptions {
  /** Folder inside the run folder (default 'arrow'). */
  readonly subdir?: string;
  readonly now?: () => number;
}

export interface ArrowSinkResult {
  readonly files: Readonly<Partial<Record<TableName, string>>>;
  readonly rows: Readonly<Partial<Record<TableName, number>>>;
}

/**
 * The Arrow format of the run-table writer: one `<table>.arrows` stream per table under `<runDir>/arrow/`,
 * same columns as the Parquet tables (examples in one stream across epochs). Synchronous writes: it never
 * lags the run.
 */
class ArrowStreams implements RunTableFormat<ArrowSinkResult> {
  readonly name = 'arrow';
  private readonly writers = new Map<TableName, ArrowStreamFileWriter>();
  private readonly rows: Partial<Record<TableName, number>> = {};
  private readonly files: Partial<Record<TableName, string>> = {};
  private start: RunEventOf<'run-start'> | null = null;
  private folder: RunFolder | null = null;

  constructor(private readonly options: ArrowSinkOptions = {}) {}

  private get(name: TableName): ArrowStreamFileWriter {
    if (!this.start || !this.folder) throw new AtflowError('ARGUMENT', `arrow sink: event before 'run-start'`);
    let w = this.writers.get(name);
    if (!w) {
      w = new ArrowStreamFileWriter(this.folder.arrowFile(name, this.options.subdir), TABLES[name], runMetadata(this.start));
      this.writers.set(name, w);
      this.files[name] = w.path;
    }
    return w;
  }

  /**
   * Streams an earlier process of this run left behind: a table with an epoch column keeps the batches of
   * the epochs the carry keeps, exactly as the Parquet format does, and appends to them (rows of later
   * epochs, written before a kill or a stop and never checkpointed, are dropped, and so is a torn last
   * batch). Every other stream (labels, which run-start re-emits; everything on a fresh start) is removed,
   * so no stale stream survives.
   */
  begin(start: RunEventOf<'run-start'>, folder: RunFolder, carry: Carry): void {
    this.start = start;
    this.folder = folder;
    const dir = folder.arrowDir(this.options.subdir);
    if (!fs.existsSync(dir)) return;
    for (const f of fs.readdirSync(dir)) if (isTempName(f)) removeEntry(path.join(dir, f));
    for (const name of Object.keys(TABLES) as TableName[]) {
      const file = folder.arrowFile(name, this.options.subdir);
      if (!fs.existsSync(file)) continue;
      const defs = TABLES[name];
      if (!carry.fresh && defs.some((d) => d.name === 'epoch')) {
        const kept: Iterable<CarriedBatch> = keptBatches(file, defs, carry.keepEpoch);
        const w = new ArrowStreamFileWriter(file, defs, runMetadata(start), kept);
        this.writers.set(name, w);
        this.files[name] = w.path;
      } else {
        removeEntry(file);
      }
    }
  }

  append(r: TableRows): void {
    this.get(r.table).append(r.row, r.count);
  }

  /** The epoch's rows are durable before its checkpoint is written (the runner checkpoints after epoch-end). */
  epochDurable(): void {
    for (const w of this.writers.values()) w.sync();
  }

  end(): void {
    this.close();
  }

  /** Ends every stream (idempotent). */
  close(): void {
    for (const [name, w] of this.writers) this.rows[name] = w.close();
    this.writers.clear();
  }

  result(): ArrowSinkResult {
    return { files: this.files, rows: this.rows };
  }
}

/** The Arrow run writer (the one behind `arrowSink`): the run-table writer with the Arrow format. */
export class ArrowRunWriter extends RunTableWriter<ArrowSinkResult> {
  constructor(options: ArrowSinkOptions = {}) {
    super(new ArrowStreams(options), options.now);
  }
}

/**
 * The Arrow sink: `events$.pipe(arrowSink())` writes `<runDir>/arrow/<table>.arrows` (Arrow IPC
 * stream format) and emits an ArrowSinkResult when the stream completes.
 */
export function arrowSink(options: ArrowSinkOptions = {}): OperatorFunction<RunEvent, ArrowSinkResult> {
  return sinkOperator(() => new ArrowRunWriter(options));
}
