import * as arrow from 'apache-arrow';
import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { abortTemp, commitTemp, openTemp, type TempFile } from '../core/durable-file';
import { arrowSchema, ColumnAccumulator, type ColumnDef, type ColumnValues, makeRecordBatch } from './columns';

// parquet-wasm's package.json maps the bare specifier to its CommonJS node build under the "node"
// condition (node/parquet_wasm.js, which loads its .wasm synchronously): no init call is needed.

const pw: typeof import('parquet-wasm') = require('parquet-wasm');

export const DEFAULT_ROW_GROUP_SIZE = 65536;

export interface ParquetWriterOptions {
  /** Written into the file's key-value metadata (values must be strings; objects are JSON-encoded by the caller). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Rows per row group (default 65,536). */
  readonly rowGroupSize?: number;
  /**
   * Folder of the temp file (default: the target's). Must be on the same file system. The examples parts
   * use the run folder, so that no half-written file ever sits in the dataset folder a reader lists
   * (polars' `read_parquet(dir)` refuses a folder holding a file of another extension).
   */
  readonly tempDir?: string;
}

/** Feeds wasm RecordBatches to parquet-wasm's stream transformer one at a time (pull-driven). */
class BatchQueue {
  private items: unknown[] = [];
  private closed = false;
  private waiter: (() => void) | null = null;
  private drained: (() => void) | null = null;

  readonly stream = new ReadableStream(
    {
      pull: async (ctrl) => {
        while (this.items.length === 0 && !this.closed) await new Promise<void>((r) => (this.waiter = r));
        if (this.items.length > 0) {
          ctrl.enqueue(this.items.shift());
          if (this.items.length === 0) this.drained?.();
        } else ctrl.close();
      },
    },
    { highWaterMark: 0 },
  );

  push(item: unknown): void {
    this.items.push(item);
    this.wake();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  /** Resolves once the transformer has taken every queued batch: bounds memory to ~one row group. */
  whenDrained(): Promise<void> {
    if (this.items.length === 0) return Promise.resolve();
    return new Promise((r) => (this.drained = r));
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/**
 * A streamed Parquet file writer: rows are gathered into row groups of `rowGroupSize`, each handed
 * to parquet-wasm's `transformParquetStream` (ZSTD) and its bytes written to a temp file in the
 * target folder as they come, so memory stays ~one row group whatever the number of rows.
 * `close()` fsyncs and renames the temp file into place: readers never see a partial file, and a
 * failed write leaves any previous file at `path` untouched.
 */
export class ParquetStreamWriter {
  private readonly acc: ColumnAccumulator;
  private readonly pump: Promise<void>;
  private error: unknown = null;
  private finished = false;
  private rows = 0;

  private constructor(
    readonly path: string,
    readonly defs: readonly ColumnDef[],
    private readonly schema: arrow.Schema,
    private readonly temp: TempFile,
    private readonly queue: BatchQueue,
    output: Promise<ReadableStream<Uint8Array>>,
    rowGroupSize: number,
  ) {
    this.acc = new ColumnAccumulator(defs, rowGroupSize);
    this.pump = this.drainTo(output).catch((e) => {
      this.error ??= e;
    });
  }

  static async open(filePath: string, defs: readonly ColumnDef[], options: ParquetWriterOptions = {}): Promise<ParquetStreamWriter> {
    const rowGroupSize = options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE;
    if (!(Number.isInteger(rowGroupSize) && rowGroupSize > 0)) {
      throw new AtflowError('ARGUMENT', `rowGroupSize must be a positive integer, got ${rowGroupSize}`);
    }
    let temp: TempFile;
    try {
      fs.mkdirSync(path.dirname(filePath), { recursive: true });
      if (options.tempDir) fs.mkdirSync(options.tempDir, { recursive: true });
      temp = openTemp(filePath, options.tempDir);
    } catch (e) {
      throw e instanceof AtflowError ? e : new AtflowError('IO', `cannot create ${filePath}: ${(e as Error).message}`, { path: filePath });
    }
    let builder = new pw.WriterPropertiesBuilder()
      .setCompression(pw.Compression.ZSTD)
      .setMaxRowGroupSize(rowGroupSize)
      .setCreatedBy('atflow (parquet-wasm 0.8)');
    // Dictionary pages pay off for the repeated strings (run_id, phase, event); for numbers they cost
    // more encoding time than they save (ZSTD already squeezes small-int columns).
    for (const d of defs) if (d.type !== 'utf8') builder = builder.setColumnDictionaryEnabled(d.name, false);
    if (options.metadata) builder = builder.setKeyValueMetadata(new Map(Object.entries(options.metadata)));
    const props = builder.build(); // build() consumes the builder
    const schema = arrowSchema(defs);
    const queue = new BatchQueue();
    // transformParquetStream takes ownership of `props` and of every batch it pulls (frees them). It
    // resolves only after it has pulled the first batch (it needs the schema), so it is not awaited here.
    const output = pw.transformParquetStream(queue.stream, props) as Promise<ReadableStream<Uint8Array>>;
    return new ParquetStreamWriter(filePath, defs, schema, temp, queue, output, rowGroupSize);
  }

  private async drainTo(output: Promise<ReadableStream<Uint8Array>>): Promise<void> {
    const reader = (await output).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let off = 0;
      while (off < value.length) off += fs.writeSync(this.temp.fd, value, off, value.length - off);
    }
  }

  get rowsWritten(): number {
    return this.rows + this.acc.length;
  }

  /**
   * Appends `count` rows; scalar values are broadcast (e.g. epoch, phase). Resolves once the rows
   * are buffered and any full row group has been handed to the encoder.
   */
  async append(cols: Readonly<Record<string, ColumnValues | number | string>>, count: number): Promise<void> {
    this.assertOpen();
    let full = false;
    this.acc.append(cols, count, (chunk, n) => {
      this.enqueue(chunk, n);
      full = true;
    });
    if (full) await this.backpressure();
  }

  /** Appends an Arrow table or batch whose columns match this writer's (by name). */
  async appendArrow(batch: arrow.RecordBatch | arrow.Table): Promise<void> {
    const cols: Record<string, ColumnValues> = {};
    for (const d of this.defs) {
      const v = batch.getChild(d.name);
      if (!v) throw new AtflowError('ARGUMENT', `arrow input lacks column '${d.name}'`);
      cols[d.name] = fromArrowVector(d, v);
    }
    await this.append(cols, batch.numRows);
  }

  private enqueue(chunk: Readonly<Record<string, ColumnValues>>, n: number): void {
    const rb = makeRecordBatch(this.schema, this.defs, chunk, n);
    const ipc = arrow.tableToIPC(new arrow.Table(rb), 'stream');
    const table = pw.Table.fromIPCStream(ipc);
    try {
      for (const b of table.recordBatches()) this.queue.push(b);
    } finally {
      table.free();
    }
    this.rows += n;
  }

  private async backpressure(): Promise<void> {
    await Promise.race([this.queue.whenDrained(), this.pump]);
    if (this.error) throw this.wrapError();
  }

  private assertOpen(): void {
    if (this.finished) throw new AtflowError('IO', `parquet writer for ${this.path} is already closed`);
    if (this.error) throw this.wrapError();
  }

  private wrapError(): AtflowError {
    const e = this.error as Error;
    return e instanceof AtflowError ? e : new AtflowError('IO', `writing ${this.path} failed: ${e?.message ?? e}`, { path: this.path });
  }

  /** Flushes, finishes the file, fsyncs and renames it into place. Returns the number of rows. */
  async close(): Promise<number> {
    this.assertOpen();
    this.finished = true;
    try {
      this.acc.flush((chunk, n) => this.enqueue(chunk, n));
      if (this.rows === 0) this.enqueue(emptyColumns(this.defs), 0); // a valid, empty file with the schema
      this.queue.close();
      await this.pump;
      if (this.error) throw this.wrapError();
      commitTemp(this.temp, { fault: 'parquet-close' });
      return this.rows;
    } catch (e) {
      abortTemp(this.temp);
      throw e instanceof AtflowError
        ? e
        : new AtflowError('IO', `writing ${this.path} failed: ${(e as Error).message}`, { path: this.path });
    }
  }

  /** Drops the temp file; the target path is left as it was. */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.error ??= new Error('aborted');
    this.queue.close();
    await this.pump;
    abortTemp(this.temp);
  }
}

function emptyColumns(defs: readonly ColumnDef[]): Record<string, ColumnValues> {
  const out: Record<string, ColumnValues> = {};
  for (const d of defs) {
    out[d.name] =
      d.type === 'utf8'
        ? []
        : d.type === 'int32'
          ? new Int32Array(0)
          : d.type === 'float32'
            ? new Float32Array(0)
            : d.type === 'bool'
              ? new Uint8Array(0)
              : new Float64Array(0);
  }
  return out;
}

function fromArrowVector(d: ColumnDef, v: arrow.Vector): ColumnValues {
  const n = v.length;
  switch (d.type) {
    case 'utf8':
      return Array.from({ length: n }, (_, i) => String(v.get(i)));
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = v.get(i) ? 1 : 0;
      return out;
    }
    case 'int32':
      return Int32Array.from({ length: n }, (_, i) => Number(v.get(i)));
    default: {
      const out = d.type === 'float32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const x = v.get(i);
        out[i] = x === null || x === undefined ? NaN : Number(x);
      }
      return out;
    }
  }
}

/** Reads a whole Parquet file into an apache-arrow Table (the runtime reader; frees the wasm side). */
export function readParquetTable(filePath: string, columns?: string[]): arrow.Table {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(filePath);
  } catch (e) {
    throw new AtflowError('IO', `cannot read ${filePath}: ${(e as Error).message}`, { path: filePath });
  }
  let wasmTable;
  try {
    wasmTable = pw.readParquet(bytes, columns ? { columns } : undefined);
  } catch (e) {
    throw new AtflowError('DATA_FILE', `${filePath} is not a readable Parquet file: ${(e as Error)?.message ?? e}`, { path: filePath });
  }
  const ipc = wasmTable.intoIPCStream(); // consumes (frees) the wasm table
  return arrow.tableFromIPC(ipc);
}

/**
 * The file's Arrow schema, from its footer alone (a folder of large parts is checked without reading them):
 * the footer is handed to parquet-wasm framed as a file that holds nothing else.
 */
export function readParquetSchema(filePath: string): arrow.Schema {
  let bytes: Uint8Array;
  try {
    const fd = fs.openSync(filePath, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const tail = Buffer.alloc(8);
      if (size < 12 || fs.readSync(fd, tail, 0, 8, size - 8) !== 8 || tail.toString('latin1', 4) !== 'PAR1')
        throw new Error('no Parquet footer');
      const len = tail.readUInt32LE(0);
      if (len + 12 > size) throw new Error(`footer length ${len} exceeds the file`);
      bytes = Buffer.alloc(len + 12);
      bytes.set(Buffer.from('PAR1', 'latin1'), 0);
      fs.readSync(fd, bytes, 4, len + 8, size - 8 - len);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new AtflowError('DATA_FILE', `${filePath} is not a readable Parquet file: ${(e as Error).message}`, { path: filePath });
  }
  let schema;
  try {
    schema = pw.readSchema(bytes);
  } catch (e) {
    throw new AtflowError('DATA_FILE', `${filePath} is not a readable Parquet file: ${(e as Error)?.message ?? e}`, { path: filePath });
  }
  return arrow.tableFromIPC(schema.intoIPCStream()).schema; // intoIPCStream consumes (frees) it
}

/** The file's key-value metadata (our run config, seed, versions, backend), without the embedded Arrow schema. */
export function readParquetMetadata(filePath: string): Record<string, string> {
  const bytes = fs.readFileSync(filePath);
  const schema = pw.readSchema(bytes);
  try {
    const out: Record<string, string> = {};
    for (const [k, v] of schema.metadata()) if (k !== 'ARROW:schema') out[k] = v;
    return out;
  } finally {
    schema.free();
  }
}
