import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/**
 * pandas, pyarrow, polars and DuckDB reading the logs with their obvious calls (read_logs.py), in the venv that
 * scripts/python-setup.sh makes from the machine's package index (the one venv of the checks). CI's .ci/run makes it first; a test
 * run without it makes it here (~1 min, once). Where it cannot be made, CI fails with the reason; elsewhere
 * the tests that need it are skipped with a warning saying how to get it.
 */
const REPO = path.join(__dirname, '..', '..', '..');
const SETUP = path.join(REPO, 'scripts', 'python-setup.sh');
const VENV_PYTHON = path.join(REPO, '.cache', 'python-venv', 'bin', 'python');

export interface ReaderResult {
  readonly rows: number;
  readonly columns: string[];
  readonly epoch_type: string | null;
  readonly epoch_is_integer: boolean | null;
  readonly epochs: unknown[] | null;
  readonly digest: string;
  readonly first: unknown[] | null;
}
export type ReaderOutcome = ReaderResult | { readonly error: string };
export interface LogsAsRead {
  readonly versions: Record<string, string>;
  /** table name → reader call → what it returned */
  readonly tables: Record<string, Record<string, ReaderOutcome>>;
}
export interface TableToRead {
  readonly name: string;
  readonly kind: 'dataset' | 'file' | 'stream';
  readonly path: string;
}

let cached: { python: string | null; why: string } | null = null;

/** The venv's python, made on demand; null (with the reason) where it cannot be had outside CI. */
export function readersPython(): { python: string | null; why: string } {
  if (cached) return cached;
  const own = process.env.ATFLOW_READERS_PYTHON;
  if (own) return (cached = { python: own, why: '' });
  const made = spawnSync('bash', [SETUP], { encoding: 'utf8', timeout: 600_000 });
  if (made.status === 0 && fs.existsSync(VENV_PYTHON)) return (cached = { python: VENV_PYTHON, why: '' });
  const why = `scripts/python-setup.sh failed (exit ${made.status}): ${(made.stderr || made.stdout || String(made.error ?? '')).trim().split('\n').slice(-3).join(' | ')}`;
  if (process.env.CI) throw new Error(`the log-reader tests need pandas, pyarrow, polars and duckdb: ${why}`);
  return (cached = { python: null, why });
}

/** Runs read_logs.py on the tables; throws with its stderr when Python itself fails. */
export function readLogs(python: string, tables: readonly TableToRead[]): LogsAsRead {
  const r = spawnSync(python, [path.join(__dirname, 'read_logs.py'), JSON.stringify(tables)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`read_logs.py exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as LogsAsRead;
}

export const isError = (o: ReaderOutcome): o is { error: string } => 'error' in o;
