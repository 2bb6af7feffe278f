import * as fs from 'fs';
import * as arrow from 'apache-arrow';
import * as path from 'path';
import type { OperatorFunction } from 'rxjs';
import type { RunEvent, RunEventOf } from '../core/run-event';
import { sinkOperator } from '../core/run-sink';
import { AtflowError } from '../core/errors';
import type { ColumnDef } from './columns';
import { ParquetStreamWriter, readParquetTable, DEFAULT_ROW_GROUP_SIZE } from './parquet-writer';
import { exampleEpochName, removeEntry, RunFolder, type RunTable } from '../store/run-folder';
import { fsyncDir } from '../core/durable-file';
import { checkRunTables } from './table-check';
import { COMPLEXITY_COLUMNS, EPOCHS_COLUMNS, EVENTS_COLUMNS, EXAMPLES_COLUMNS, LABELS_COLUMNS, STEPS_COLUMNS } from './tables';
import { RunTableWriter, type Carry, type RunTableFormat, type SeenEpochs, type TableRows } from './run-table-writer';
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
  const doc = {
    run_id: start.runId,
    seed: start.seed,
    started_at: start.startedAt,
    epochs: start.epochs,
    first_epoch: start.firstEpoch,
    num_classes: start.numClasses,
    train_size: start.trainSize,
    backend: start.backend,
    ...(start.evaluation ? { evaluation: start.evaluation } : {}),
    versions: runVersions(),
    spec: start.spec ?? null,
  };
  return new RunFolder(start.runDir).writeSpec(doc);
}

/**
 * The Parquet format of the run-table writer: the run folder's tables.
 * Layout: examples/epoch-NNNN/part-<phase>[-<split>].parquet (one file per epoch, phase and split, closed at that
 * epoch's epoch-end; plain folder names, not Hive's key=value: see exampleEpochName), events/epochs/steps/
 * complexity/labels.parquet (closed at run-end), spec.json, and _SUCCESS last. Every file appears atomically
 * (temp + fsync + rename); the examples parts' temp files are kept in the run folder, outside examples/.
 */
class ParquetTables implements RunTableFormat<ParquetSinkResult> {
  readonly name = 'parquet';
  private start: RunEventOf<'run-start'> | null = null;
  private folder: RunFolder | null = null;
  private meta: Record<string, string> = {};
  private readonly tables = new Map<SingleTable, ParquetStreamWriter>();
  private readonly parts = new Map<string, { epoch: number; writer: ParquetStreamWriter }>();
  private readonly partCount = new Map<string, number>();
  private readonly files: Record<string, string[]> = {};
  private readonly rows: Record<string, number> = {};
  private success = false;

  constructor(private readonly options: ParquetSinkOptions = {}) {}

  private get writeOptions() {
    return { metadata: this.meta, rowGroupSize: this.options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE };
  }

  async begin(start: RunEventOf<'run-start'>, folder: RunFolder, carry: Carry): Promise<void> {
    this.start = start;
    this.folder = folder;
    this.meta = runMetadata(start);
    fs.mkdirSync(start.runDir, { recursive: true });
    folder.clearSuccess();
    if (this.options.writeSpec ?? true) this.record('spec', writeSpecJson(start), 0);
    folder.removeTemp();
    renameLegacyPartitions(folder);
    await this.consolidateSegments(carry);
  }

  async append(r: TableRows): Promise<void> {
    if (r.table === 'examples') {
      const { epoch, phase, split } = r.part!;
      await (await this.part(epoch, phase, split)).append(r.row, r.count);
    } else if (r.table === 'labels') {
      const w = await ParquetStreamWriter.open(this.runFolder.tableFile('labels'), LABELS_COLUMNS, this.writeOptions);
      await w.append(r.row, r.count);
      this.record('labels', w.path, await w.close());
    } else {
      await (await this.table(r.table)).append(r.row, r.count);
    }
  }

  async epochDurable(epoch: number): Promise<void> {
    await this.closeParts((e) => e <= epoch);
    await this.closeSegments();
  }

  async end(status: RunEventOf<'run-end'>['status'], seen: SeenEpochs): Promise<void> {
    await this.closeAll();
    await this.mergeSegments();
    if (status !== 'completed') return;
    // a finished run's tables must be whole and readable before anyone marks it finished
    checkRunTables(this.runFolder, seen);
    if (this.options.successMarker ?? true) {
      this.runFolder.markSuccess();
      this.record('_SUCCESS', this.runFolder.file('success'), 0);
      this.success = true;
    }
  }

  /** Closes every open file (stream completed without run-end: what was logged is kept, no _SUCCESS). */
  private async closeAll(): Promise<void> {
    await this.closeParts(() => true);
    await this.closeSegments();
  }

  private async closeSegments(): Promise<void> {
    for (const [name, w] of [...this.tables]) {
      this.tables.delete(name);
      await w.close();
    }
  }

  private get runFolder(): RunFolder {
    if (!this.folder) throw new AtflowError('ARGUMENT', "parquet sink: an event before 'run-start'");
    return this.folder;
  }

  private segments(name: SingleTable): string[] {
    return this.runFolder.segments(name as RunTable);
  }

  /**
   * A (re)started run: the rows the carry keeps (the epochs before the resumed one), from the merged table of
   * an earlier process and from its segments, become one segment; rows of later epochs (a half-finished epoch
   * that will be re-run) are dropped, so no row is duplicated or missing. Crash-safe: the kept rows are
   * first written (atomically) to `carry.parquet`, which wins over everything else if it exists; only
   * then are the sources removed and the carry renamed to the first segment.
   */
  private async consolidateSegments(carry: Carry): Promise<void> {
    for (const name of Object.keys(SINGLE_TABLES) as SingleTable[]) {
      if (name === 'labels') continue;
      const carried = this.runFolder.carryFile(name);
      const merged = this.runFolder.tableFile(name);
      const others = [...(fs.existsSync(merged) ? [merged] : []), ...this.segments(name)];
      const sources = fs.existsSync(carried) ? [carried] : others;
      if (sources.length === 0) continue;
      if (!carry.fresh) {
        const kept = sources.map((f) => keepEpochs(readParquetTable(f), carry.keepEpoch));
        const w = await ParquetStreamWriter.open(carried, SINGLE_TABLES[name], this.writeOptions);
        for (const t of kept) await w.appendArrow(t);
        await w.close();
      }
      for (const f of others) removeEntry(f);
      if (fs.existsSync(carried)) {
        if (!carry.fresh) {
          fs.renameSync(carried, this.runFolder.segmentFile(name, 0));
          fsyncDir(this.runFolder.segmentsDir(name));
        } else removeEntry(carried);
      }
    }
  }

  /** At run-end: every table's segments, in order, into `<table>.parquet`; then the segments go. */
  private async mergeSegments(): Promise<void> {
    for (const name of Object.keys(SINGLE_TABLES) as SingleTable[]) {
      if (name === 'labels') continue;
      const segs = this.segments(name);
      if (segs.length === 0) continue;
      const file = this.runFolder.tableFile(name);
      const w = await ParquetStreamWriter.open(file, SINGLE_TABLES[name], this.writeOptions);
      for (const f of segs) await w.appendArrow(readParquetTable(f));
      this.record(name, file, await w.close());
      removeEntry(this.runFolder.segmentsDir(name));
    }
    const dir = this.runFolder.segmentsDir();
    if (fs.existsSync(dir) && fs.readdirSync(dir).length === 0) removeEntry(dir);
  }

  /** After the last event, whatever the outcome (a no-op after run-end). */
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

  /** The open segment of a table: `_segments/<table>/seg-NNNNNN.parquet`, numbered in write order. */
  private async table(name: SingleTable): Promise<ParquetStreamWriter> {
    let w = this.tables.get(name);
    if (w) return w;
    const existing = this.segments(name);
    const next = existing.length ? Number(/seg-(\d+)/.exec(path.basename(existing[existing.length - 1]))![1]) + 1 : 0;
    w = await ParquetStreamWriter.open(this.runFolder.segmentFile(name, next), SINGLE_TABLES[name], this.writeOptions);
    this.tables.set(name, w);
    return w;
  }

  /** `part-<phase>.parquet` for the training split, `part-eval-test.parquet` / `part-eval-val.parquet` for the others. */
  private async part(epoch: number, phase: string, split: string): Promise<ParquetStreamWriter> {
    const name = split === 'train' ? phase : `${phase}-${split}`;
    const key = `${epoch}/${name}`;
    const open = this.parts.get(key);
    if (open) return open.writer;
    const k = this.partCount.get(key) ?? 0;
    this.partCount.set(key, k + 1);
    const file = this.runFolder.examplePartFile(epoch, name, k);
    const writer = await ParquetStreamWriter.open(file, EXAMPLES_COLUMNS, { ...this.writeOptions, tempDir: this.runFolder.dir });
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

/**
 * The run folder's Parquet writer (the one behind `parquetSink`): the run-table writer with the Parquet
 * format. Handles one event at a time (the sink serialises them).
 */
export class ParquetRunWriter extends RunTableWriter<ParquetSinkResult> {
  constructor(options: ParquetSinkOptions = {}) {
    super(new ParquetTables(options), options.now);
  }
}

/** Rows of `t` whose epoch the carry keeps. */
function keepEpochs(t: arrow.Table, keepEpoch: (epoch: number) => boolean): arrow.Table {
  const epoch = t.getChild('epoch');
  if (!epoch) return t;
  const keep: number[] = [];
  for (let i = 0; i < t.numRows; i++) if (keepEpoch(Number(epoch.get(i)))) keep.push(i);
  if (keep.length === t.numRows) return t;
  const cols: Record<string, arrow.Vector> = {};
  for (const f of t.schema.fields) {
    const v = t.getChild(f.name)!;
    cols[f.name] = arrow.vectorFromArray(
      keep.map((i) => v.get(i)),
      f.type,
    );
  }
  return new arrow.Table(cols);
}

/**
 * A run folder written by an earlier version names its examples folders Hive-style (`epoch=NNNN`); resuming
 * it renames them to `epoch-NNNN`, so that the finished folder has one layout that every reader opens.
 */
function renameLegacyPartitions(folder: RunFolder): void {
  let renamed = false;
  for (const { epoch, dir } of folder.exampleFolders()) {
    if (path.basename(dir) === exampleEpochName(epoch)) continue;
    const to = folder.exampleEpochDir(epoch);
    if (fs.existsSync(to)) {
      throw new AtflowError(
        'RESUME',
        `${folder.examplesDir} holds both ${path.basename(dir)} and ` +
          `${exampleEpochName(epoch)}: remove the one that is not this run's ` +
          `epoch ${epoch}`,
        { path: folder.examplesDir },
      );
    }
    fs.renameSync(dir, to);
    renamed = true;
  }
  if (renamed) fsyncDir(folder.examplesDir);
}

/**
 * The Parquet sink: `events$.pipe(parquetSink())` writes the run folder of DESIGN.md and emits one
 * ParquetSinkResult when the event stream completes. Events are handled strictly in order; an error
 * upstream aborts the open files (their temp files are removed; files already renamed stay).
 */
export function parquetSink(options: ParquetSinkOptions = {}): OperatorFunction<RunEvent, ParquetSinkResult> {
  return sinkOperator(() => new ParquetRunWriter(options));
}
