import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { readParquetSchema } from './parquet-writer';

/**
 * Which files make up which table, the way readers see a run folder: a file is a table; a folder of
 * Parquet files that share one schema (`examples/`, with its epoch-NNNN/ subfolders, or `_segments/steps/`)
 * is one table, as pandas' / pyarrow's / polars' `read_parquet(dir)` read it; a glob is one table, as
 * DuckDB's `read_parquet('…/*.parquet')` reads it. Hidden files (writes in progress) are never part of one.
 */
export interface TableFiles {
  /** The file, folder or glob as it names the table. */
  readonly label: string;
  readonly format: 'parquet' | 'arrow';
  readonly files: readonly string[];
}

const TABLE_FILE = /\.(parquet|arrow|arrows|ipc|feather)$/;
const formatOf = (f: string): 'parquet' | 'arrow' => (f.endsWith('.parquet') ? 'parquet' : 'arrow');

export function isGlob(p: string): boolean {
  return /[*?[]/.test(p);
}

/** Files matching a glob (`*`, `?`, `[…]` within a path segment; `**` for any depth), sorted. */
export function expandGlob(pattern: string): string[] {
  const segments = pattern.split(/[\\/]+/);
  const absolute = path.isAbsolute(pattern);
  let paths = [absolute ? path.parse(pattern).root : '.'];
  for (let i = absolute ? 1 : 0; i < segments.length; i++) {
    const seg = segments[i];
    const last = i === segments.length - 1;
    if (seg === '') continue;
    if (!isGlob(seg)) {
      paths = paths.map((p) => path.join(p, seg)).filter((p) => fs.existsSync(p));
      continue;
    }
    if (seg === '**') {
      paths = paths.flatMap((p) => [p, ...subfolders(p)]);
      continue;
    }
    const re = segmentRegExp(seg);
    paths = paths.flatMap((p) =>
      entries(p)
        .filter((e) => re.test(e.name) && (seg.startsWith('.') || !e.name.startsWith('.')) && (last || e.isDirectory()))
        .map((e) => path.join(p, e.name)),
    );
  }
  return [...new Set(paths)].filter((p) => fs.statSync(p).isFile()).sort();
}

function entries(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function subfolders(dir: string): string[] {
  return entries(dir)
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .flatMap((e) => [path.join(dir, e.name), ...subfolders(path.join(dir, e.name))]);
}

function segmentRegExp(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re +=
          '[' +
          seg
            .slice(i + 1, end)
            .replace(/^!/, '^')
            .replace(/\\/g, '\\\\') +
          ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Every non-hidden file under `dir`, sorted (depth first, names in order). */
function filesUnder(dir: string): string[] {
  return entries(dir)
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** Column names and types: what must agree for files to be one table. */
function schemaKey(file: string): string {
  return readParquetSchema(file)
    .fields.map((f) => `${f.name}: ${f.type}`)
    .join(', ');
}

/** The files of a glob as one table; files whose columns differ are an error naming them. */
function globTable(pattern: string): TableFiles {
  const files = expandGlob(pattern).filter((f) => TABLE_FILE.test(f));
  if (files.length === 0) throw new AtflowError('DATA_FILE', `inspect: no .parquet/.arrow files match ${pattern}`, { path: pattern });
  const formats = new Set(files.map(formatOf));
  if (formats.size > 1)
    throw new AtflowError('ARGUMENT', `inspect: ${pattern} matches both Parquet and Arrow files; give a pattern for one of them`, {
      path: pattern,
    });
  if (formats.has('parquet')) {
    const first = schemaKey(files[0]);
    const other = files.find((f) => schemaKey(f) !== first);
    if (other) {
      throw new AtflowError(
        'DATA_FILE',
        `inspect: ${pattern} matches files of different tables: ${files[0]} ` +
          `has (${first}), ${other} has (${schemaKey(other)}); inspect them one ` +
          `at a time, or their folder`,
        { path: other },
      );
    }
  } else if (files.length > 1) {
    throw new AtflowError('ARGUMENT', `inspect: ${pattern} matches ${files.length} Arrow streams; each is a table of its own: give one`, {
      path: pattern,
    });
  }
  return { label: pattern, format: formatOf(files[0]), files };
}

/**
 * The tables of a file, a folder or a glob. A folder is one table when it holds Parquet files only, all
 * with one schema; otherwise each of its files is a table and each subfolder is looked at the same way.
 */
export function tablesOf(target: string): TableFiles[] {
  if (!fs.existsSync(target) && isGlob(target)) return [globTable(target)];
  if (!fs.existsSync(target)) throw new AtflowError('IO', `inspect: ${target} does not exist`, { path: target });
  if (!fs.statSync(target).isDirectory()) return [{ label: target, format: formatOf(target), files: [target] }];
  const folder = (dir: string): TableFiles[] => {
    const all = filesUnder(dir);
    if (all.length > 0 && all.every((f) => f.endsWith('.parquet'))) {
      const first = schemaKey(all[0]);
      if (all.every((f) => schemaKey(f) === first)) return [{ label: dir, format: 'parquet', files: all }];
    }
    return entries(dir)
      .filter((e) => !e.name.startsWith('.'))
      .sort((a, b) => a.name.localeCompare(b.name))
      .flatMap((e) => {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) return folder(p);
        return TABLE_FILE.test(e.name) ? [{ label: p, format: formatOf(p), files: [p] }] : [];
      });
  };
  return folder(target);
}
