import * as arrow from 'apache-arrow';
import type { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../../core/errors';
import { readParquetMetadata, readParquetTable } from '../../logs/parquet-writer';

export interface InspectResult {
  readonly file: string;
  readonly format: 'parquet' | 'arrow';
  readonly rows: number;
  readonly schema: Array<{ name: string; type: string; nullable: boolean }>;
  readonly head: Array<Record<string, unknown>>;
  readonly metadata: Record<string, string>;
}

function readTable(file: string): { table: arrow.Table; format: 'parquet' | 'arrow'; metadata: Record<string, string> } {
  if (file.endsWith('.parquet')) return { table: readParquetTable(file), format: 'parquet', metadata: readParquetMetadata(file) };
  if (/\.(arrow|arrows|ipc|feather)$/.test(file)) {
    let table: arrow.Table;
    try {
      table = arrow.tableFromIPC(fs.readFileSync(file));
    } catch (e) {
      throw new AtflowError('DATA_FILE', `${file} is not a readable Arrow IPC file/stream: ${(e as Error).message}`, { path: file });
    }
    return { table, format: 'arrow', metadata: Object.fromEntries(table.schema.metadata) };
  }
  throw new AtflowError('ARGUMENT', `inspect: ${file}: expected a .parquet, .arrow or .arrows file, or a run folder`, { path: file });
}

function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.toISOString();
  return v;
}

/** Schema, row count and the first `head` rows of one table file. */
export function inspectFile(file: string, head = 5): InspectResult {
  if (!fs.existsSync(file)) throw new AtflowError('IO', `inspect: ${file} does not exist`, { path: file });
  const { table, format, metadata } = readTable(file);
  const rows: Array<Record<string, unknown>> = [];
  const timestamps = new Set(table.schema.fields.filter((f) => arrow.DataType.isTimestamp(f.type)).map((f) => f.name));
  for (let i = 0; i < Math.min(head, table.numRows); i++) {
    const r = table.get(i)!.toJSON() as Record<string, unknown>;
    rows.push(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, timestamps.has(k) && v !== null ? new Date(Number(v)).toISOString() : jsonSafe(v)])));
  }
  return {
    file,
    format,
    rows: table.numRows,
    schema: table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable })),
    head: rows,
    metadata,
  };
}

/** Every table file of a run folder (examples parts included), sorted. */
export function tableFiles(target: string): string[] {
  if (!fs.statSync(target).isDirectory()) return [target];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const f of fs.readdirSync(d).sort()) {
      const p = path.join(d, f);
      if (f.startsWith('.')) continue; // temp files of writes in progress
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (/\.(parquet|arrow|arrows)$/.test(f)) out.push(p);
    }
  };
  walk(target);
  return out;
}

function render(r: InspectResult, showMeta: boolean): string {
  const lines = [`${r.file}  (${r.format}, ${r.rows} rows)`];
  const w = Math.max(...r.schema.map((c) => c.name.length));
  for (const c of r.schema) lines.push(`  ${c.name.padEnd(w)}  ${c.type}${c.nullable ? '' : ' not null'}`);
  if (r.head.length) {
    const cols = r.schema.map((c) => c.name);
    const cell = (v: unknown) => (v === null || v === undefined ? 'null' : typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toPrecision(6))) : String(v));
    const widths = cols.map((c) => Math.max(c.length, ...r.head.map((row) => cell(row[c]).length)));
    lines.push('  ' + cols.map((c, i) => c.padEnd(widths[i])).join('  '));
    for (const row of r.head) lines.push('  ' + cols.map((c, i) => cell(row[c]).padEnd(widths[i])).join('  '));
  }
  if (showMeta) for (const [k, v] of Object.entries(r.metadata)) lines.push(`  meta ${k} = ${v.length > 200 ? v.slice(0, 197) + '...' : v}`);
  return lines.join('\n');
}

/** `atflow inspect <file|runDir> [--head n] [--json] [--meta]` */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('schema, row count and first rows of a .parquet / .arrow(s) file, or of every table in a run folder')
    .argument('<target>', 'a table file or a run folder')
    .option('-n, --head <rows>', 'rows to show', '5')
    .option('--meta', 'also print the key-value metadata')
    .option('--json', 'print JSON')
    .action((target: string, opts: { head: string; meta?: boolean; json?: boolean }) => {
      if (!fs.existsSync(target)) throw new AtflowError('IO', `inspect: ${target} does not exist`, { path: target });
      const head = Number(opts.head);
      if (!(Number.isInteger(head) && head >= 0)) throw new AtflowError('ARGUMENT', `--head must be a non-negative integer, got '${opts.head}'`);
      const results = tableFiles(target).map((f) => inspectFile(f, head));
      if (results.length === 0) throw new AtflowError('DATA_FILE', `inspect: no .parquet/.arrow files under ${target}`);
      if (opts.json) process.stdout.write(JSON.stringify(results.length === 1 && !fs.statSync(target).isDirectory() ? results[0] : results) + '\n');
      else process.stdout.write(results.map((r) => render(r, !!opts.meta)).join('\n\n') + '\n');
    });
}
