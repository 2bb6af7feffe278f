import type { ColumnDef, ColumnValues } from './columns';
import type { EpochRecord, EventColumns, ExampleColumns, StepRecord } from '../core/records';

/**
 * The run folder's tables, declared once (DESIGN.md "What the logs look like"; docs/schema.md
 * describes every column). The Parquet and Arrow sinks write exactly these.
 */
const f32 = (name: string): ColumnDef => ({ name, type: 'float32', nullable: true });
const f64 = (name: string): ColumnDef => ({ name, type: 'float64', nullable: true });
const i32 = (name: string): ColumnDef => ({ name, type: 'int32' });
const bool = (name: string): ColumnDef => ({ name, type: 'bool' });
const utf8 = (name: string): ColumnDef => ({ name, type: 'utf8' });

export const EXAMPLES_COLUMNS: readonly ColumnDef[] = [
  utf8('run_id'),
  i32('epoch'),
  utf8('phase'),
  utf8('split'),
  i32('example'),
  i32('label_true'),
  i32('label_used'),
  bool('is_noisy'),
  bool('input_corrupted'),
  f32('loss_clean'),
  i32('pred_clean'),
  bool('correct_clean'),
  f32('p_label_clean'),
  f32('margin_clean'),
  f32('loss_adv'),
  i32('pred_adv'),
  bool('correct_adv'),
  f32('p_label_adv'),
  f32('margin_adv'),
  f32('te_target_entropy'),
  f32('te_penalty'),
];

export const EVENTS_COLUMNS: readonly ColumnDef[] = [
  utf8('run_id'),
  i32('epoch'),
  utf8('phase'),
  i32('example'),
  utf8('event'),
  bool('is_noisy'),
  i32('first_learned_epoch'),
];

export const EPOCHS_COLUMNS: readonly ColumnDef[] = [
  utf8('run_id'),
  i32('epoch'),
  f64('lr'),
  f64('te_weight'),
  f64('train_loss'),
  f64('train_clean_acc'),
  f64('train_clean_loss'),
  f64('train_robust_acc'),
  f64('train_robust_loss'),
  f64('test_clean_acc'),
  f64('test_clean_loss'),
  f64('test_robust_acc'),
  f64('test_robust_loss'),
  f64('grad_norm_sq_mean'),
  f64('wall_ms'),
  f64('eval_ms'),
  i32('best_epoch'),
  utf8('best_rule'),
  { name: 'time', type: 'timestamp' },
];

export const STEPS_COLUMNS: readonly ColumnDef[] = [
  utf8('run_id'),
  i32('epoch'),
  i32('step'),
  f64('loss'),
  f64('grad_norm_sq'),
  f64('lr'),
  f64('ms'),
  i32('batch_size'),
  { name: 'time', type: 'timestamp' },
];

/** Long format (one row per measure) so that a new measure never changes the schema. */
export const COMPLEXITY_COLUMNS: readonly ColumnDef[] = [utf8('run_id'), i32('epoch'), utf8('measure'), f64('value')];

export const LABELS_COLUMNS: readonly ColumnDef[] = [
  utf8('run_id'),
  i32('example'),
  i32('label_true'),
  i32('label_used'),
  bool('is_noisy'),
  bool('input_corrupted'),
];

export type TableName = 'examples' | 'events' | 'epochs' | 'steps' | 'complexity' | 'labels';

export const TABLES: Readonly<Record<TableName, readonly ColumnDef[]>> = {
  examples: EXAMPLES_COLUMNS,
  events: EVENTS_COLUMNS,
  epochs: EPOCHS_COLUMNS,
  steps: STEPS_COLUMNS,
  complexity: COMPLEXITY_COLUMNS,
  labels: LABELS_COLUMNS,
};

type Row = Readonly<Record<string, ColumnValues | number | string>>;

/** ExampleColumns → columns of the examples table (scalars broadcast by the writers). */
export function examplesRow(runId: string, c: ExampleColumns): Row {
  return {
    ...c,
    run_id: runId,
    epoch: c.epoch,
    phase: c.phase,
    split: c.split ?? 'train',
    input_corrupted: c.input_corrupted ?? 0,
  } as unknown as Row;
}

export function eventsRow(runId: string, c: EventColumns): Row {
  return {
    run_id: runId,
    epoch: c.epoch,
    phase: c.phase,
    example: c.example,
    event: c.event,
    is_noisy: c.is_noisy,
    first_learned_epoch: c.first_learned_epoch,
  };
}

export function epochRow(runId: string, r: EpochRecord, timeMs: number): Row {
  const out: Record<string, ColumnValues | number | string> = { run_id: runId, time: new Float64Array([timeMs]) };
  for (const d of EPOCHS_COLUMNS) {
    if (d.name === 'run_id' || d.name === 'time') continue;
    const v = (r as unknown as Record<string, number | string>)[d.name];
    out[d.name] =
      d.type === 'utf8'
        ? String(v ?? '')
        : d.type === 'int32'
          ? new Int32Array([Number(v)])
          : new Float64Array([v === undefined || v === null ? NaN : Number(v)]);
  }
  return out;
}

export function stepRow(runId: string, r: StepRecord, timeMs: number): Row {
  return {
    run_id: runId,
    epoch: new Int32Array([r.epoch]),
    step: new Int32Array([r.step]),
    loss: new Float64Array([r.loss]),
    grad_norm_sq: new Float64Array([r.grad_norm_sq]),
    lr: new Float64Array([r.lr]),
    ms: new Float64Array([r.ms]),
    batch_size: new Int32Array([r.batch_size]),
    time: new Float64Array([timeMs]),
  };
}

export function complexityRows(runId: string, epoch: number, measures: Readonly<Record<string, number>>): { row: Row; count: number } {
  const names = Object.keys(measures).sort();
  return {
    row: {
      run_id: runId,
      epoch: new Int32Array(names.length).fill(epoch),
      measure: names,
      value: Float64Array.from(names.map((k) => measures[k])),
    },
    count: names.length,
  };
}

export function labelsRow(
  runId: string,
  example: Int32Array,
  labelTrue: Int32Array,
  labelUsed: Int32Array,
  inputCorrupted?: Uint8Array,
): Row {
  const noisy = new Uint8Array(example.length);
  for (let i = 0; i < noisy.length; i++) noisy[i] = labelTrue[i] !== labelUsed[i] ? 1 : 0;
  return { run_id: runId, example, label_true: labelTrue, label_used: labelUsed, is_noisy: noisy, input_corrupted: inputCorrupted ?? 0 };
}
