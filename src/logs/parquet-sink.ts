import * as fs from 'fs';
import * as arrow from 'apache-arrow';
import * as path from 'path';
import type { OperatorFunction } from 'rxjs';
import type { RunEvent, RunEventOf } from '../core/run-event';
import { sinkOperator, type RunSinkWithResult } from '../core/run-sink';
import { AtflowError } from '../core/errors';
import type { ColumnDef } from './columns';
import { ParquetStreamWriter, readParquetTable, DEFAULT_ROW_GROUP_SIZE } from './parquet-writer';
import { exampleEpochName, removeEntry, RunFolder, type RunTable } from '../store/run-folder';
import { fsyncDir } from '../core/durable-file';
import { checkRunTables } from './table-check';
import {
  COMPLEXITY_COLUMNS,
  complexityRows,
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
 * The run folder writer behind `parquetSink`. Handles one event at a time (the sink serialises them).
 * Layout: examples/epoch-NNNN/part-<phase>[-<split>].parquet (one file per epoch, phase and split, closed at that
 * epoch's epoch-end; plain folder names, not Hive's key=value: see exampleEpochName), events/epochs/steps/
 * complexity/labels.parquet (closed at run-end), spec.json, and _SUCCESS last. Every file appears atomically
 * (temp + fsync + rename); the examples parts' temp files are kept in the run folder, outside examples/.
 */
export class ParquetRunWriter implements RunSinkWithResult<ParquetSinkResult> {
  readonly name = 'parquet';
  private start: RunEventOf<'run-start'> | null = null;
  private folder: RunFolder | null = null;
  /** Training steps of the epochs this session ran (epoch-start), and the last epoch seen: for checkRunTables. */
  private readonly stepsPerEpoch = new Map<number, number>();
  private lastEpoch = 0;
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
        this.folder = new RunFolder(ev.runDir);
        this.meta = runMetadata(ev);
        this.lastEpoch = ev.priorEpochs.length ? ev.priorEpochs[ev.priorEpochs.length - 1].epoch : 0;
        fs.mkdirSync(ev.runDir, { recursive: true });
        this.folder.checkShape();
        this.folder.clearSuccess();
        if (this.options.writeSpec ?? true) this.record('spec', writeSpecJson(ev), 0);
        this.folder.removeTemp();
        renameLegacyPartitions(this.folder);
        await this.consolidateSegments(ev.firstEpoch);
        return;
      }
      case 'labels': {
        const s = this.requireStart(ev);
        const w = await ParquetStreamWriter.open(this.runFolder.tableFile('labels'), LABELS_COLUMNS, { metadata: this.meta, rowGroupSize: this.options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE });
        await w.append(labelsRow(s.runId, ev.example, ev.label_true, ev.label_used, ev.input_corrupted), ev.example.length);
        this.record('labels', w.path, await w.close());
        return;
      }
      case 'examples': {
        const s = this.requireStart(ev);
        const c = ev.columns;
        const w = await this.part(c.epoch, c.phase, c.split ?? 'train');
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
      case 'epoch-start':
        this.stepsPerEpoch.set(ev.epoch, ev.steps);
        return;
      case 'epoch-end': {
        const s = this.requireStart(ev);
        this.lastEpoch = ev.record.epoch;
        await (await this.table('epochs')).append(epochRow(s.runId, ev.record, this.now), 1);
        await this.closeParts((e) => e <= ev.record.epoch);
        // every row of the epoch is durable once epoch-end is handled: the runner checkpoints after it
        await this.closeSegments();
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
        await this.mergeSegments();
        if (ev.status === 'completed') {
          // a finished run's tables must be whole and readable before anyone marks it finished
          checkRunTables(this.runFolder, { lastEpoch: this.lastEpoch, stepsPerEpoch: this.stepsPerEpoch, trainSize: this.start!.trainSize });
          if (this.options.successMarker ?? true) {
            this.runFolder.markSuccess();
            this.record('_SUCCESS', this.runFolder.file('success'), 0);
            this.success = true;
          }
        }
        return;
      }
      default:
        return; // warning, checkpoint: nothing to store here
    }
  }

  /** Closes every open file (stream completed without run-end: what was logged is kept, no _SUCCESS). */
  async closeAll(): Promise<void> {
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
   * A (re)started run: the rows of the epochs before `firstEpoch`, from the merged table of an earlier
   * process and from its segments, become one segment; rows of later epochs (a half-finished epoch
   * that will be re-run) are dropped, so no row is duplicated or missing. Crash-safe: the kept rows are
   * first written (atomically) to `carry.parquet`, which wins over everything else if it exists; only
   * then are the sources removed and the carry renamed to the first segment.
   */
  private async consolidateSegments(firstEpoch: number): Promise<void> {
    for (const name of Object.keys(SINGLE_TABLES) as SingleTable[]) {
      if (name === 'labels') continue;
      const carry = this.runFolder.carryFile(name);
      const merged = this.runFolder.tableFile(name);
      const others = [...(fs.existsSync(merged) ? [merged] : []), ...this.segments(name)];
      const sources = fs.existsSync(carry) ? [carry] : others;
      if (sources.length === 0) continue;
      if (firstEpoch > 1) {
        const kept = sources.map((f) => keepEpochsBefore(readParquetTable(f), firstEpoch));
        const w = await ParquetStreamWriter.open(carry, SINGLE_TABLES[name], { metadata: this.meta, rowGroupSize: this.options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE });
        for (const t of kept) await w.appendArrow(t);
        await w.close();
      }
      for (const f of others) removeEntry(f);
      if (fs.existsSync(carry)) {
        if (firstEpoch > 1) {
          fs.renameSync(carry, this.runFolder.segmentFile(name, 0));
          fsyncDir(this.runFolder.segmentsDir(name));
        }
        else removeEntry(carry);
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
      const w = await ParquetStreamWriter.open(file, SINGLE_TABLES[name], { metadata: this.meta, rowGroupSize: this.options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE });
      for (const f of segs) await w.appendArrow(readParquetTable(f));
      this.record(name, file, await w.close());
      removeEntry(this.runFolder.segmentsDir(name));
    }
    const dir = this.runFolder.segmentsDir();
    if (fs.existsSync(dir) && fs.readdirSync(dir).length === 0) removeEntry(dir);
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

  /** The open segment of a table: `_segments/<table>/seg-NNNNNN.parquet`, numbered in write order. */
  private async table(name: SingleTable): Promise<ParquetStreamWriter> {
    let w = this.tables.get(name);
    if (w) return w;
    const existing = this.segments(name);
    const next = existing.length ? Number(/seg-(\d+)/.exec(path.basename(existing[existing.length - 1]))![1]) + 1 : 0;
    const file = this.runFolder.segmentFile(name, next);
    w = await ParquetStreamWriter.open(file, SINGLE_TABLES[name], { metadata: this.meta, rowGroupSize: this.options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE });
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
    const writer = await ParquetStreamWriter.open(file, EXAMPLES_COLUMNS, { metadata: this.meta, rowGroupSize: this.options.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE, tempDir: this.runFolder.dir });
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

/** Rows of `t` whose epoch is before `firstEpoch`. */
function keepEpochsBefore(t: arrow.Table, firstEpoch: number): arrow.Table {
  const epoch = t.getChild('epoch');
  if (!epoch) return t;
  const keep: number[] = [];
  for (let i = 0; i < t.numRows; i++) if (Number(epoch.get(i)) < firstEpoch) keep.push(i);
  if (keep.length === t.numRows) return t;
  const cols: Record<string, arrow.Vector> = {};
  for (const f of t.schema.fields) {
    const v = t.getChild(f.name)!;
    cols[f.name] = arrow.vectorFromArray(keep.map((i) => v.get(i)), f.type);
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
      throw new AtflowError('RESUME', `${folder.examplesDir} holds both ${path.basename(dir)} and ${exampleEpochName(epoch)}: remove the one that is not this run's epoch ${epoch}`, { path: folder.examplesDir });
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
