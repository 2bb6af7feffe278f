import * as arrow from 'apache-arrow';
import type { Command } from 'commander';
import * as fs from 'fs';
import { AtflowError } from '../../core/errors';
import { readParquetMetadata, readParquetTable } from '../../logs/parquet-writer';
import { tablesOf, type TableFiles } from '../../logs/table-files';

export interface InspectResult {
  /** The file, or the folder / glob whose files are one table. */
  readonly file: string;
  readonly format: 'parquet' | 'arrow';
  /** How many files the table is made of (1 for a file; the part files of examples/). */
  readonly files: number;
  readonly rows: number;
  readonly schema: Array<{ name: string; type: string; nullable: boolean }>;
  readonly head: Array<Record<string, unknown>>;
  /** The (first) file's key-value metadata. */
  readonly metadata: Record<string, string>;
}

function readTable(
  file: string,
  columns?: string[],
): { table: arrow.Table; format: 'parquet' | 'arrow'; metadata: Record<string, string> } {
  if (file.endsWith('.parquet')) return { table: readParquetTable(file, columns), format: 'parquet', metadata: readParquetMetadata(file) };
  if (/\.(arrow|arrows|ipc|feather)$/.test(file)) {
    let table: arrow.Table;
    try {
      table = arrow.tableFromIPC(fs.readFileSync(file));
    } catch (e) {
      throw new AtflowError('DATA_FILE', `${file} is not a readable Arrow IPC file/stream: ${(e as Error).message}`, { path: file });
    }
    return { table, format: 'arrow', metadata: Object.fromEntries(table.schema.metadata) };
  }
  throw new AtflowError(
    'ARGUMENT',
    `inspect: ${file}: expected a .parquet, .arrow or .arrows file, a folder of them, a run folder or a glob`,
    { path: file },
  );
}

function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.toISOString();
  return v;
}

/** Schema, row count and the first `head` rows of one table file. */
export function inspectFile(file: string, head = 5): InspectResult {
  if (!fs.existsSync(file)) throw new AtflowError('IO', `inspect: ${file} does not exist`, { path: file });
  return inspectTable({ label: file, format: file.endsWith('.parquet') ? 'parquet' : 'arrow', files: [file] }, head);
}

/**
 * One table made of one or more files (tablesOf: a folder like examples/ or a glob): the schema of its
 * first file (tablesOf checked the others agree), the rows of all, the first `head` rows in file order.
 */
export function inspectTable(t: TableFiles, head = 5): InspectResult {
  const first = readTable(t.files[0]);
  const rows: Array<Record<string, unknown>> = [];
  const timestamps = new Set(first.table.schema.fields.filter((f) => arrow.DataType.isTimestamp(f.type)).map((f) => f.name));
  let total = 0;
  for (const [k, file] of t.files.entries()) {
    // past the head, one column is enough to count the rows
    const table =
      k === 0
        ? first.table
        : rows.length < head
          ? readTable(file).table
          : readTable(
              file,
              first.table.schema.fields.slice(0, 1).map((f) => f.name),
            ).table;
    for (let i = 0; i < table.numRows && rows.length < head; i++) {
      const r = table.get(i)!.toJSON() as Record<string, unknown>;
      rows.push(
        Object.fromEntries(
          Object.entries(r).map(([c, v]) => [c, timestamps.has(c) && v !== null ? new Date(Number(v)).toISOString() : jsonSafe(v)]),
        ),
      );
    }
    total += table.numRows;
  }
  return {
    file: t.label,
    format: first.format,
    files: t.files.length,
    rows: total,
    schema: first.table.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable })),
    head: rows,
    metadata: first.metadata,
  };
}

function render(r: InspectResult, showMeta: boolean): string {
  const lines = [`${r.file}  (${r.format}, ${r.files > 1 ? `${r.files} files, ` : ''}${r.rows} rows)`];
  const w = Math.max(...r.schema.map((c) => c.name.length));
  for (const c of r.schema) lines.push(`  ${c.name.padEnd(w)}  ${c.type}${c.nullable ? '' : ' not null'}`);
  if (r.head.length) {
    const cols = r.schema.map((c) => c.name);
    const cell = (v: unknown) =>
      v === null || v === undefined ? 'null' : typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toPrecision(6))) : String(v);
    const widths = cols.map((c) => Math.max(c.length, ...r.head.map((row) => cell(row[c]).length)));
    lines.push('  ' + cols.map((c, i) => c.padEnd(widths[i])).join('  '));
    for (const row of r.head) lines.push('  ' + cols.map((c, i) => cell(row[c]).padEnd(widths[i])).join('  '));
  }
  if (showMeta)
    for (const [k, v] of Object.entries(r.metadata)) lines.push(`  meta ${k} = ${v.length > 200 ? v.slice(0, 197) + '...' : v}`);
  return lines.join('\n');
}

/** `atflow inspect <file|folder|runDir|glob> [--head n] [--json] [--meta]` */
export function register(program: Command): void {
  program
    .command('inspect')
    .description(
      'schema, row count and first rows of a .parquet / .arrow(s) file, of a ' +
        'folder of Parquet files read as one table (examples/), of a glob, or ' +
        'of every table in a run folder',
    )
    .argument(
      '<target>',
      "a table file, a folder (runs/<id>/examples is one table), a run folder, or a glob in quotes ('runs/<id>/examples/*/*.parquet')",
    )
    .option('-n, --head <rows>', 'rows to show', '5')
    .option('--meta', 'also print the key-value metadata')
    .option('--json', 'print JSON (one object for one table, else an array)')
    .action((target: string, opts: { head: string; meta?: boolean; json?: boolean }) => {
      const head = Number(opts.head);
      if (!(Number.isInteger(head) && head >= 0))
        throw new AtflowError('ARGUMENT', `--head must be a non-negative integer, got '${opts.head}'`);
      const tables = tablesOf(target);
      if (tables.length === 0) throw new AtflowError('DATA_FILE', `inspect: no .parquet/.arrow files under ${target}`, { path: target });
      const results = tables.map((t) => inspectTable(t, head));
      if (opts.json) process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results) + '\n');
      else process.stdout.write(results.map((r) => render(r, !!opts.meta)).join('\n\n') + '\n');
    });
}
