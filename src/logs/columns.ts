import * as arrow from 'apache-arrow';
import { AtflowError } from '../core/errors';

/**
 * A tiny column type system shared by the Parquet and Arrow sinks: each table is declared once as a
 * list of (name, type) and built from typed arrays without per-row JS objects (that is what makes a
 * 1M-row write cheap).
 */
export type ColumnType = 'int32' | 'float32' | 'float64' | 'bool' | 'utf8' | 'timestamp';

export interface ColumnDef {
  readonly name: string;
  readonly type: ColumnType;
  /** Nullable float columns write NaN as null. */
  readonly nullable?: boolean;
}

/** Strings as codes into a small table: repeated values (run_id, phase, event) cost 4 bytes a row. */
export interface CodedStrings {
  readonly codes: Int32Array;
  readonly table: readonly string[];
}

/** Column values as produced in memory: typed arrays for numbers, Uint8Array 0/1 for bools, strings. */
export type ColumnValues = Int32Array | Float32Array | Float64Array | Uint8Array | readonly string[] | CodedStrings;

function isCoded(v: unknown): v is CodedStrings {
  return !!v && typeof v === 'object' && 'codes' in v && 'table' in v;
}

const utf8Encoder = new TextEncoder();

/** Builds an Arrow Utf8 column directly (offsets + bytes), encoding each distinct string once. */
function utf8Data(values: readonly string[] | CodedStrings, n: number): arrow.Data<arrow.Utf8> {
  const coded: CodedStrings = isCoded(values) ? values : codeStrings(values, n);
  const encoded = coded.table.map((t) => utf8Encoder.encode(t));
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += encoded[coded.codes[i]].length;
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < n; i++) bytes.set(encoded[coded.codes[i]], offsets[i]);
  return arrow.makeData({ type: new arrow.Utf8(), length: n, valueOffsets: offsets, data: bytes });
}

function codeStrings(values: readonly string[], n: number): CodedStrings {
  const index = new Map<string, number>();
  const table: string[] = [];
  const codes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = String(values[i]);
    let c = index.get(v);
    if (c === undefined) {
      c = table.length;
      table.push(v);
      index.set(v, c);
    }
    codes[i] = c;
  }
  return { codes, table };
}

function arrowType(t: ColumnType): arrow.DataType {
  switch (t) {
    case 'int32':
      return new arrow.Int32();
    case 'float32':
      return new arrow.Float32();
    case 'float64':
      return new arrow.Float64();
    case 'bool':
      return new arrow.Bool();
    case 'utf8':
      return new arrow.Utf8();
    case 'timestamp':
      return new arrow.TimestampMillisecond('UTC');
  }
}

export function arrowSchema(defs: readonly ColumnDef[], metadata?: Record<string, string>): arrow.Schema {
  const fields = defs.map((d) => new arrow.Field(d.name, arrowType(d.type), d.type === 'utf8' ? false : true));
  return new arrow.Schema(fields, metadata ? new Map(Object.entries(metadata)) : undefined);
}

function packBits(v: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (v[i]) out[i >> 3] |= 1 << (i & 7);
  return out;
}

/** Validity bitmap with NaN → null; undefined when there is no NaN (no bitmap needed). */
function nanValidity(v: Float32Array | Float64Array, n: number): { bitmap: Uint8Array; nulls: number } | undefined {
  let nulls = 0;
  for (let i = 0; i < n; i++) if (v[i] !== v[i]) nulls++;
  if (nulls === 0) return undefined;
  const bitmap = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++) if (v[i] === v[i]) bitmap[i >> 3] |= 1 << (i & 7);
  return { bitmap, nulls };
}

function columnData(def: ColumnDef, values: ColumnValues, n: number): arrow.Data {
  const type = arrowType(def.type);
  const check = (ok: boolean, expected: string) => {
    if (!ok)
      throw new AtflowError(
        'ARGUMENT',
        `column '${def.name}': expected ${expected} of length ≥ ${n}, got ${values?.constructor?.name} ` +
          `of length ${isCoded(values) ? values.codes.length : values?.length}`,
      );
  };
  switch (def.type) {
    case 'int32':
      check(values instanceof Int32Array && values.length >= n, 'Int32Array');
      return arrow.makeData({ type: type as arrow.Int32, length: n, data: (values as Int32Array).subarray(0, n) });
    case 'float32':
    case 'float64': {
      const isF32 = def.type === 'float32';
      check(isF32 ? values instanceof Float32Array : values instanceof Float64Array, isF32 ? 'Float32Array' : 'Float64Array');
      check((values as Float32Array).length >= n, 'an array');
      const data = (values as Float32Array | Float64Array).subarray(0, n);
      const validity = def.nullable ? nanValidity(data, n) : undefined;
      return arrow.makeData({
        type: type as arrow.Float32,
        length: n,
        data: data as Float32Array,
        nullCount: validity?.nulls ?? 0,
        nullBitmap: validity?.bitmap,
      });
    }
    case 'bool':
      check(values instanceof Uint8Array && values.length >= n, 'Uint8Array of 0/1');
      return arrow.makeData({ type: type as arrow.Bool, length: n, data: packBits(values as Uint8Array, n) });
    case 'timestamp': {
      check(values instanceof Float64Array && values.length >= n, 'Float64Array of epoch milliseconds');
      const ms = new BigInt64Array(n);
      for (let i = 0; i < n; i++) ms[i] = BigInt(Math.round((values as Float64Array)[i]));
      return arrow.makeData({ type: type as arrow.TimestampMillisecond, length: n, data: ms as unknown as Int32Array });
    }
    case 'utf8': {
      check(isCoded(values) ? values.codes.length >= n : Array.isArray(values) && values.length >= n, 'an array of strings');
      return utf8Data(values as readonly string[] | CodedStrings, n);
    }
  }
}

/** One Arrow RecordBatch of `n` rows from named column values. */
export function makeRecordBatch(
  schema: arrow.Schema,
  defs: readonly ColumnDef[],
  cols: Readonly<Record<string, ColumnValues>>,
  n: number,
): arrow.RecordBatch {
  const children = defs.map((d) => {
    const v = cols[d.name];
    if (v === undefined)
      throw new AtflowError('ARGUMENT', `column '${d.name}' is missing (columns given: ${Object.keys(cols).join(', ')})`);
    return columnData(d, v, n);
  });
  const data = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children });
  return new arrow.RecordBatch(schema, data);
}

/**
 * Accumulates rows column by column into preallocated typed arrays and hands out full chunks of
 * `capacity` rows, so writers see few, large batches however small the producer's batches are.
 */
export class ColumnAccumulator {
  private bufs: Record<string, ColumnValues> = {};
  private strs: Record<string, { codes: Int32Array; table: string[]; index: Map<string, number> }> = {};
  private n = 0;

  constructor(
    readonly defs: readonly ColumnDef[],
    readonly capacity: number,
  ) {
    this.reset();
  }

  get length(): number {
    return this.n;
  }

  private reset(): void {
    this.n = 0;
    for (const d of this.defs) {
      if (d.type === 'utf8') this.strs[d.name] = { codes: new Int32Array(this.capacity), table: [], index: new Map() };
      else this.bufs[d.name] = allocate(d.type, this.capacity);
    }
  }

  /**
   * Appends `count` rows. A column given as a scalar (number or string) is broadcast to every row
   * (e.g. epoch, phase, run_id); arrays are copied from index 0.
   */
  append(
    cols: Readonly<Record<string, ColumnValues | number | string>>,
    count: number,
    onFull: (chunk: Readonly<Record<string, ColumnValues>>, n: number) => void,
  ): void {
    let from = 0;
    while (from < count) {
      const take = Math.min(count - from, this.capacity - this.n);
      for (const d of this.defs) {
        const v = cols[d.name];
        if (v === undefined) throw new AtflowError('ARGUMENT', `column '${d.name}' is missing`);
        if (d.type === 'utf8') {
          const dst = this.strs[d.name];
          const code = (s: string) => {
            let c = dst.index.get(s);
            if (c === undefined) {
              c = dst.table.length;
              dst.table.push(s);
              dst.index.set(s, c);
            }
            return c;
          };
          if (typeof v === 'string') dst.codes.fill(code(v), this.n, this.n + take);
          else if (Array.isArray(v)) for (let i = 0; i < take; i++) dst.codes[this.n + i] = code(String(v[from + i]));
          else throw new AtflowError('ARGUMENT', `column '${d.name}' holds strings, got ${v?.constructor?.name}`);
        } else {
          const dst = this.bufs[d.name] as Float64Array;
          if (typeof v === 'number') dst.fill(v, this.n, this.n + take);
          else if (typeof v === 'string') throw new AtflowError('ARGUMENT', `column '${d.name}' is numeric, got the string '${v}'`);
          else if (Array.isArray(v)) for (let i = 0; i < take; i++) dst[this.n + i] = Number(v[from + i]);
          else {
            if (!(v instanceof (dst.constructor as Float64ArrayConstructor))) {
              throw new AtflowError(
                'ARGUMENT',
                `column '${d.name}' (${d.type}) expects ${dst.constructor.name}, got ${v?.constructor?.name}`,
              );
            }
            if ((v as Float64Array).length < count)
              throw new AtflowError('ARGUMENT', `column '${d.name}' has ${(v as Float64Array).length} values, expected ${count}`);
            dst.set((v as Float64Array).subarray(from, from + take), this.n);
          }
        }
      }
      this.n += take;
      from += take;
      if (this.n === this.capacity) this.flush(onFull);
    }
  }

  /** Hands out the rows gathered so far (if any) and starts a fresh chunk. */
  flush(onChunk: (chunk: Readonly<Record<string, ColumnValues>>, n: number) => void): void {
    if (this.n === 0) return;
    const chunk: Record<string, ColumnValues> = { ...this.bufs };
    for (const d of this.defs) if (d.type === 'utf8') chunk[d.name] = { codes: this.strs[d.name].codes, table: this.strs[d.name].table };
    const n = this.n;
    this.reset();
    onChunk(chunk, n);
  }
}

function allocate(t: ColumnType, n: number): ColumnValues {
  switch (t) {
    case 'int32':
      return new Int32Array(n);
    case 'float32':
      return new Float32Array(n);
    case 'float64':
    case 'timestamp':
      return new Float64Array(n);
    case 'bool':
      return new Uint8Array(n);
    case 'utf8':
      return [];
  }
}
