import type { RunEvent, RunEventOf } from '../core/run-event';
import type { RunSinkWithResult } from '../core/run-sink';
import { AtflowError } from '../core/errors';
import type { ColumnValues } from './columns';
import { RunFolder } from '../store/run-folder';
import { complexityRows, epochRow, eventsRow, examplesRow, labelsRow, stepRow, type TableName } from './tables';

/** One batch of rows of one run table, built from an event; `count` rows. */
export interface TableRows {
  readonly table: TableName;
  readonly row: Readonly<Record<string, ColumnValues | number | string>>;
  readonly count: number;
  /** The examples rows' epoch, phase and split (the Parquet format files them per epoch, phase and split). */
  readonly part?: { readonly epoch: number; readonly phase: string; readonly split: string };
}

/** What a resumed or restarted run keeps of what an earlier process wrote, for every format alike. */
export interface Carry {
  /** The rows of the epochs before the resumed one stay; rows of later epochs (never checkpointed) go. */
  readonly keepEpoch: (epoch: number) => boolean;
  /** Nothing stays: a fresh start (firstEpoch 1). Tables without an epoch column (labels) never stay: run-start re-emits them. */
  readonly fresh: boolean;
}

/**
 * How a run's tables land on disk: the Parquet files of the run folder, or Arrow IPC streams. The
 * RunTableWriter routes events to it (which rows go to which table, when an epoch's rows must be
 * durable, what a resume keeps); a format only stores.
 */
export interface RunTableFormat<R> {
  readonly name: string;
  /** After run-start: the folder checked and its temp files gone; keep what `carry` says of an earlier process's tables. */
  begin(start: RunEventOf<'run-start'>, folder: RunFolder, carry: Carry): Promise<void> | void;
  append(rows: TableRows): Promise<void> | void;
  /** After epoch-end's row: every row of the epoch durable (the runner checkpoints next). */
  epochDurable(epoch: number): Promise<void> | void;
  /** run-end: close everything; `status` and what the writer saw decide the format's last word (_SUCCESS). */
  end(status: RunEventOf<'run-end'>['status'], seen: SeenEpochs): Promise<void> | void;
  /** After the last event, whatever the outcome (idempotent; a no-op after end). */
  close(): Promise<void> | void;
  /** An upstream error: drop what is being written, keep what is in place. */
  abort?(): Promise<void> | void;
  result(): R;
}

/** What the writer saw of the epochs, for the checks a finished run's tables must pass. */
export interface SeenEpochs {
  readonly lastEpoch: number;
  /** Training steps of the epochs this session ran (epoch-start). */
  readonly stepsPerEpoch: ReadonlyMap<number, number>;
  readonly trainSize: number;
}

/**
 * The run-table writer: one event routing (RunEvent → rows of which table), one run-start (the folder's shape
 * checked, temp files of a killed writer removed, the resume carry decided), one durability point
 * (epoch-end) for every format. `ParquetRunWriter` and `ArrowRunWriter` are this writer with their format.
 */
export class RunTableWriter<R> implements RunSinkWithResult<R> {
  readonly name: string;
  private start: RunEventOf<'run-start'> | null = null;
  private lastEpoch = 0;
  private readonly stepsPerEpoch = new Map<number, number>();

  constructor(
    protected readonly format: RunTableFormat<R>,
    private readonly now: () => number = Date.now,
  ) {
    this.name = format.name;
  }

  private requireStart(ev: RunEvent): RunEventOf<'run-start'> {
    if (!this.start) throw new AtflowError('ARGUMENT', `${this.name} sink: '${ev.type}' event before 'run-start'`);
    return this.start;
  }

  handle(ev: RunEvent): void | Promise<void> {
    if (ev.type === 'run-start') {
      this.start = ev;
      this.lastEpoch = ev.priorEpochs.length ? ev.priorEpochs[ev.priorEpochs.length - 1].epoch : 0;
      const folder = new RunFolder(ev.runDir);
      folder.checkShape();
      const firstEpoch = ev.firstEpoch;
      return this.format.begin(ev, folder, { fresh: firstEpoch <= 1, keepEpoch: (epoch) => epoch < firstEpoch });
    }
    if (ev.type === 'warning' || ev.type === 'checkpoint' || ev.type === 'eval-progress') return;
    const id = this.requireStart(ev).runId;
    switch (ev.type) {
      case 'labels':
        return this.format.append({
          table: 'labels',
          row: labelsRow(id, ev.example, ev.label_true, ev.label_used, ev.input_corrupted),
          count: ev.example.length,
        });
      case 'examples': {
        const c = ev.columns;
        return this.format.append({
          table: 'examples',
          row: examplesRow(id, c),
          count: c.example.length,
          part: { epoch: c.epoch, phase: c.phase, split: c.split ?? 'train' },
        });
      }
      case 'events':
        return this.format.append({ table: 'events', row: eventsRow(id, ev.columns), count: ev.columns.example.length });
      case 'step':
        return this.format.append({ table: 'steps', row: stepRow(id, ev.record, this.now()), count: 1 });
      case 'epoch-start':
        this.stepsPerEpoch.set(ev.epoch, ev.steps);
        return;
      case 'epoch-end': {
        this.lastEpoch = ev.record.epoch;
        const epoch = ev.record.epoch;
        // a synchronous format (Arrow) stays synchronous: its epoch is durable when handle returns
        const appended = this.format.append({ table: 'epochs', row: epochRow(id, ev.record, this.now()), count: 1 });
        return appended instanceof Promise ? appended.then(() => this.format.epochDurable(epoch)) : this.format.epochDurable(epoch);
      }
      case 'complexity': {
        const { row, count } = complexityRows(id, ev.epoch, ev.measures);
        return this.format.append({ table: 'complexity', row, count });
      }
      case 'run-end':
        return this.format.end(ev.status, {
          lastEpoch: this.lastEpoch,
          stepsPerEpoch: this.stepsPerEpoch,
          trainSize: this.start!.trainSize,
        });
      default:
        return;
    }
  }

  close(): void | Promise<void> {
    return this.format.close();
  }

  /** The stream broke: the format drops what is half-written (a format without abort closes instead, as sinkOperator would). */
  abort(): void | Promise<void> {
    return this.format.abort ? this.format.abort() : this.format.close();
  }

  result(): R {
    return this.format.result();
  }
}
