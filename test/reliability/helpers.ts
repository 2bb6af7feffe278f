/**
 * Shared by the reliability tests: tiny run configs, the CLI, folder snapshots (to prove that a failure
 * damaged nothing), table reads that ignore wall-clock columns, and ways to make a disk refuse writes.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readParquetTable } from '../../src/logs/parquet-writer';

export const ROOT = path.join(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'atflow.js');

/** A run that trains for real but in a second: 16 digits, 2 epochs of 2 steps, PGD-1, the small MLP. */
export function tinySpec(name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    seed: 7,
    epochs: 2,
    data: { source: 'mnist', trainSize: 16, testSize: 8, batchSize: 8, testBatchSize: 8 },
    labelNoise: { kind: 'symmetric', rate: 0.25 },
    model: { name: 'mlp' },
    trainer: { name: 'pgd-at' },
    attack: { eps: 0.1, alpha: 0.05, steps: 1 },
    optimizer: { lr: 0.05 },
    schedule: { name: 'constant' },
    eval: { final: { examples: 8 } },
    ...over,
  };
}

export function writeJson(file: string, value: unknown): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 1));
  return file;
}

export interface CliResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node bin/atflow.js ...args`; `shell` (a bash prefix such as `ulimit -f 64;`) runs it under a shell. */
export function atflow(args: readonly string[], options: { env?: Record<string, string>; shellPrefix?: string } = {}): CliResult {
  const env = { ...process.env, ...(options.env ?? {}) };
  const r = options.shellPrefix
    ? spawnSync('bash', ['-c', `${options.shellPrefix} exec "$0" "$@"`, process.execPath, BIN, ...args], {
        env,
        encoding: 'utf8',
        timeout: 180_000,
      })
    : spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 180_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Every file under `dir` (relative path → sha256 of its bytes): equal snapshots mean byte-identical trees. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

export function copyDir(from: string, to: string): string {
  fs.cpSync(from, to, { recursive: true });
  return to;
}

const CLOCK_COLUMNS = new Set(['run_id', 'time', 'ms', 'wall_ms', 'eval_ms']);

/** Rows of a Parquet file (or of every part under a folder) without run_id and wall-clock columns, sorted. */
export function tableRows(fileOrDir: string): Record<string, unknown>[] {
  const files = fs.statSync(fileOrDir).isDirectory()
    ? fs
        .readdirSync(fileOrDir, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.parquet') && !path.basename(f).startsWith('.'))
        .sort()
        .map((f) => path.join(fileOrDir, f))
    : [fileOrDir];
  const rows: Record<string, unknown>[] = [];
  for (const f of files) {
    const t = readParquetTable(f);
    for (let i = 0; i < t.numRows; i++) {
      const r = t.get(i)!.toJSON() as Record<string, unknown>;
      rows.push(
        Object.fromEntries(
          Object.entries(r)
            .filter(([k]) => !CLOCK_COLUMNS.has(k))
            .map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]),
        ),
      );
    }
  }
  const key = (r: Record<string, unknown>) => JSON.stringify([r.epoch, r.phase, r.example, r.step, r.event, r.measure]);
  return rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN; usually not inside CI containers). */
export function mountTmpfs(dir: string, size: string, readOnly = false): boolean {
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0;
}

export function unmount(dir: string): void {
  spawnSync('umount', [dir]);
}

/** Whether chmod 0555 stops this process from writing (it does not for root). */
export function chmodStopsWrites(dir: string): boolean {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o555);
  try {
    fs.writeFileSync(path.join(dir, '.probe'), '');
    fs.rmSync(path.join(dir, '.probe'));
    return false;
  } catch {
    return true;
  } finally {
    fs.chmodSync(dir, 0o755);
  }
}

export function tempRoot(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
