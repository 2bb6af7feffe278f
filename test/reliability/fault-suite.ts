/**
 * The fault suite (issue 24, "Done means"): the installed `atflow` bin driven through bad configs,
 * damaged run folders, kill -9 at random moments, concurrent writers (on one machine and from "another
 * node"), a full disk and read-only folders. Every case is classified from what a user sees:
 *
 *   clear error   exit code 2, stderr `atflow: <message>`, no stack trace (and the case's own checks)
 *   ok            exit code 0 where the case expects success (a resume, a skipped finished run)
 *   crash         anything else: exit code 1, a stack trace, a signal we did not send      (must be 0)
 *   differs       a run that finished after the fault whose tables, Arrow streams or weights are not
 *                 those of an uninterrupted run                                         (must be 0)
 *   unmet         the case's expectation failed (an error where success was due, a wrong message,
 *                 files touched that must not be)                                       (must be 0)
 *
 * test/reliability/fault-suite.test.ts runs a bounded selection under `npm test`; scripts/fault-suite.ts
 * runs the long version (more kills, a packed and installed tarball) and prints the same totals.
 */
import * as arrow from 'apache-arrow';
import { spawn, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { duck, lit } from '../logs/duck';

export const ROOT = path.join(__dirname, '..', '..');

export interface Cli {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface Suite {
  /** The installed `atflow` executable. */
  readonly bin: string;
  readonly root: string;
  readonly backend: 'wasm' | 'cpu';
  readonly config: string;
  /** The uninterrupted run every interrupted one is compared with. */
  readonly reference: string;
  readonly referenceMs: number;
  /** A run killed right after epoch 2's checkpoint (unfinished: segments, LATEST = epoch-0002, a dead holder's lock). */
  readonly unfinished: string;
  readonly runId: string;
  readonly canMount: boolean;
  readonly log: (line: string) => void;
  readonly random: () => number;
}

export type Outcome = 'clear error' | 'ok' | 'crash' | 'unmet';

export interface CaseResult {
  readonly name: string;
  readonly category: string;
  readonly outcome: Outcome;
  /** Whether the run's data was compared with the uninterrupted run, and differed. */
  readonly compared: boolean;
  readonly differs: boolean;
  readonly detail: string;
  readonly ms: number;
}

export interface FaultCase {
  readonly name: string;
  readonly category: 'bad config' | 'damaged folder' | 'kill -9' | 'concurrent writers' | 'full disk' | 'read-only';
  /** What the case needs beyond the bin: mount rights (root: a tmpfs, a read-only bind mount), `unshare -u` (root). */
  readonly needs?: 'mount' | 'unshare';
  /** Returns what the case saw; throw (an expectation failure) for 'unmet'. */
  readonly run: (
    s: Suite,
    dir: string,
  ) => Promise<{ cli: Cli; expect: 'error' | 'ok'; message?: RegExp; compare?: string; detail?: string }>;
}

/** Runs the bin; `kill` SIGKILLs it after that many ms; `prefix` wraps it (e.g. `unshare -u`). */
export function cli(
  s: Pick<Suite, 'bin'>,
  args: readonly string[],
  options: { kill?: number; env?: Record<string, string>; prefix?: readonly string[] } = {},
): Promise<Cli> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const [cmd, ...pre] = options.prefix?.length ? options.prefix : [s.bin];
    const child = spawn(cmd, [...pre, ...(options.prefix?.length ? [s.bin] : []), ...args], {
      env: { ...process.env, ATFLOW_WORKERS: '1', ...(options.env ?? {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const timer = options.kill !== undefined ? setTimeout(() => child.kill('SIGKILL'), options.kill) : null;
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/** A clear error is exit code 2 with `atflow: <message>` and no stack trace. */
export function isClearError(r: Cli): boolean {
  return r.status === 2 && /^atflow: /m.test(r.stderr) && !/\n\s+at .+\(.*:\d+:\d+\)/.test(r.stderr);
}

function firstLine(r: Cli): string {
  return (r.stderr.split('\n').find((l) => l.startsWith('atflow: ')) ?? r.stderr.trim().split('\n').slice(-3).join(' | ')).slice(0, 300);
}

// ---------------------------------------------------------------------------------------------------
// comparing a run with the uninterrupted one (DuckDB for the Parquet tables, apache-arrow for the streams)

const CLOCK = ['time', 'ms', 'wall_ms', 'eval_ms'];
const TABLES: [string, string][] = [
  ['examples', 'epoch, phase, split, example'],
  ['events', 'epoch, phase, example, event'],
  ['epochs', 'epoch'],
  ['steps', 'epoch, step'],
  ['complexity', 'epoch, measure'],
  ['labels', 'example'],
];

async function tableRows(runDir: string, name: string, order: string): Promise<string> {
  const src =
    name === 'examples'
      ? `read_parquet(${lit(path.join(runDir, 'examples', '*', '*.parquet'))}, hive_partitioning = false)`
      : `read_parquet(${lit(path.join(runDir, `${name}.parquet`))})`;
  const rows = await duck(`SELECT * EXCLUDE (run_id) FROM ${src} ORDER BY ${order}`);
  return JSON.stringify(rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !CLOCK.includes(k)))));
}

function streamRows(runDir: string, name: string): string {
  const t = arrow.tableFromIPC(fs.readFileSync(path.join(runDir, 'arrow', `${name}.arrows`)));
  return JSON.stringify(
    t.toArray().map((r) => Object.fromEntries(Object.entries(r.toJSON()).filter(([k]) => !CLOCK.includes(k)))),
    (_k, v) => (typeof v === 'bigint' ? Number(v) : v),
  );
}

function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The checkpoint weights (final and best) as bytes of their tensors: the header's metadata aside. */
function weights(runDir: string): string {
  const latest = fs.readFileSync(path.join(runDir, 'checkpoints', 'LATEST'), 'utf8').trim();
  const dir = path.join(runDir, 'checkpoints', latest);
  return ['model.safetensors', 'state.safetensors', 'best.safetensors']
    .map((f) => (fs.existsSync(path.join(dir, f)) ? sha(path.join(dir, f)) : 'none'))
    .join(',');
}

/** What differs between a run folder and the reference run ([] when nothing does). */
export async function differences(s: Suite, runDir: string): Promise<string[]> {
  const out: string[] = [];
  if (!fs.existsSync(path.join(runDir, '_SUCCESS'))) return ['no _SUCCESS'];
  for (const [name, order] of TABLES) {
    const [a, b] = [await tableRows(runDir, name, order), await tableRows(s.reference, name, order)];
    if (a !== b) out.push(`${name}.parquet`);
  }
  for (const [name] of TABLES) if (streamRows(runDir, name) !== streamRows(s.reference, name)) out.push(`arrow/${name}.arrows`);
  if (weights(runDir) !== weights(s.reference)) out.push('checkpoint weights');
  return out;
}

// ---------------------------------------------------------------------------------------------------
// files

/** relative path → sha256 (links as `link:<target>`): equal snapshots mean nothing was touched. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isSymbolicLink()) out[path.relative(dir, p)] = `link:${fs.readlinkSync(p)}`;
      else if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = sha(p);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

function copy(from: string, to: string): string {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.cpSync(from, to, { recursive: true, verbatimSymlinks: true });
  return to;
}

/** `<dir>/out/<runId>` as a copy of the finished or the unfinished fixture. */
function copyOf(s: Suite, dir: string, which: 'finished' | 'unfinished'): { out: string; runDir: string } {
  const out = path.join(dir, 'out');
  return { out, runDir: copy(which === 'finished' ? s.reference : s.unfinished, path.join(out, s.runId)) };
}

function mount(args: string[]): boolean {
  return spawnSync('mount', args, { encoding: 'utf8' }).status === 0;
}

function unmount(dir: string): void {
  spawnSync('umount', [dir]);
}

/** A read-only view of `dir` at `at` (a read-only bind mount), or null without mount rights. */
function readOnlyView(dir: string, at: string): string | null {
  fs.mkdirSync(at, { recursive: true });
  if (!mount(['--bind', dir, at])) return null;
  if (!mount(['-o', 'remount,ro,bind', at])) {
    unmount(at);
    return null;
  }
  return at;
}

const run = (s: Suite, out: string, extra: string[] = []) => ['run', s.config, '--out', out, '--backend', s.backend, '--quiet', ...extra];

function expectEqual<T>(what: string, got: T, want: T): void {
  if (JSON.stringify(got) !== JSON.stringify(want))
    throw new Error(`${what}: got ${JSON.stringify(got).slice(0, 300)}, expected ${JSON.stringify(want).slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------------
// the cases

function badConfig(name: string, config: string | object, message: RegExp): FaultCase {
  return {
    name,
    category: 'bad config',
    run: async (s, dir) => {
      const file = path.join(dir, 'bad.json');
      fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
      const out = path.join(dir, 'out');
      const cli_ = await cli(s, ['run', file, '--out', out, '--backend', s.backend, '--quiet']);
      expectEqual('files written into --out', fs.existsSync(out) ? fs.readdirSync(out) : [], []);
      return { cli: cli_, expect: 'error', message };
    },
  };
}

/** A damaged copy of a fixture, then a command on it; the user's files around it must stay as they were. */
function damaged(
  name: string,
  which: 'finished' | 'unfinished',
  damage: (runDir: string, dir: string) => void,
  args: (s: Suite, out: string, runDir: string) => string[],
  message: RegExp,
  check?: (runDir: string, dir: string) => void,
): FaultCase {
  return {
    name,
    category: 'damaged folder',
    run: async (s, dir) => {
      const { out, runDir } = copyOf(s, dir, which);
      damage(runDir, dir);
      const before = snapshot(runDir);
      const r = await cli(s, args(s, out, runDir));
      // a refused command changes nothing in the folder (its lock is gone again)
      // (the dead fixture's lock may have been taken over and released: the lock file aside)
      if (isClearError(r)) {
        const after = snapshot(runDir);
        const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
          (f) => f !== '.atflow.lock' && before[f] !== after[f],
        );
        expectEqual('files the refused command changed in the damaged folder', changed, []);
      }
      check?.(runDir, dir);
      return { cli: r, expect: 'error', message };
    },
  };
}

/** A user folder with files that a run must never touch, and a check that it did not. */
function userFolder(dir: string): { path: string; intact: () => void } {
  const p = path.join(dir, 'users-own');
  fs.mkdirSync(path.join(p, 'epoch=0009'), { recursive: true });
  fs.writeFileSync(path.join(p, 'epoch=0009', 'mydata.txt'), 'mine');
  fs.writeFileSync(path.join(p, 'my.tmp-notes.txt'), 'notes');
  fs.writeFileSync(path.join(p, '.scratch.123.4.tmp'), 'scratch');
  const before = snapshot(p);
  return { path: p, intact: () => expectEqual('the user folder behind the link', snapshot(p), before) };
}

export function faultCases(options: { kills: number; long: boolean }): FaultCase[] {
  const cases: FaultCase[] = [
    badConfig('malformed JSON', '{"epochs": 2,,}', /bad\.json: not valid JSON/),
    badConfig('a config that is a list', '[1, 2]', /a config must be a JSON object/),
    badConfig('unknown field', { name: 'x', epoch: 3, model: { name: 'mlp' } }, /epoch: unknown field \(did you mean 'epochs'\?\)/),
    badConfig(
      'unknown model',
      { name: 'x', epochs: 1, data: { source: 'mnist', trainSize: 16 }, model: { name: 'resnet19' } },
      /unknown model 'resnet19' \(did you mean 'resnet18'\?\)/,
    ),
    {
      name: '--out is a file',
      category: 'bad config',
      run: async (s, dir) => {
        const file = path.join(dir, 'a-file');
        fs.writeFileSync(file, 'x');
        return { cli: await cli(s, run(s, file)), expect: 'error', message: /a-file is a file, not a folder \(ENOTDIR\)/ };
      },
    },
    // ---- damaged folders ----
    damaged(
      'LATEST is a folder (--resume)',
      'unfinished',
      (d) => (fs.rmSync(path.join(d, 'checkpoints/LATEST')), fs.mkdirSync(path.join(d, 'checkpoints/LATEST'))),
      (s, out) => run(s, out, ['--resume']),
      /checkpoints\/LATEST is a folder, expected a file/,
    ),
    damaged(
      'checkpoints is a file (--resume)',
      'unfinished',
      (d) => (fs.rmSync(path.join(d, 'checkpoints'), { recursive: true }), fs.writeFileSync(path.join(d, 'checkpoints'), '')),
      (s, out) => run(s, out, ['--resume']),
      /checkpoints is a file, expected a folder/,
    ),
    damaged(
      '_segments/events is a file (--resume)',
      'unfinished',
      (d) => (
        fs.rmSync(path.join(d, '_segments/events'), { recursive: true, force: true }),
        fs.writeFileSync(path.join(d, '_segments/events'), '')
      ),
      (s, out) => run(s, out, ['--resume']),
      /_segments\/events is a file, expected a folder/,
    ),
    damaged(
      'examples/epoch-0002 is a file (--resume)',
      'unfinished',
      (d) => (
        fs.rmSync(path.join(d, 'examples/epoch-0002'), { recursive: true }),
        fs.writeFileSync(path.join(d, 'examples/epoch-0002'), '')
      ),
      (s, out) => run(s, out, ['--resume']),
      /examples\/epoch-0002 is a file, expected a folder/,
    ),
    damaged(
      'examples/epoch-0002 is a file after _SUCCESS: atflow report',
      'finished',
      (d) => (
        fs.rmSync(path.join(d, 'examples/epoch-0002'), { recursive: true }),
        fs.writeFileSync(path.join(d, 'examples/epoch-0002'), '')
      ),
      (_s, _o, d) => ['report', d],
      /examples\/epoch-0002 is a file, expected a folder/,
    ),
    {
      name: 'examples/epoch-0002 is a file after _SUCCESS: the run again is skipped, writes nothing',
      category: 'damaged folder',
      run: async (s, dir) => {
        const { out, runDir } = copyOf(s, dir, 'finished');
        fs.rmSync(path.join(runDir, 'examples/epoch-0002'), { recursive: true });
        fs.writeFileSync(path.join(runDir, 'examples/epoch-0002'), '');
        const before = snapshot(out);
        const r = await cli(s, run(s, out));
        expectEqual('files changed by re-running a finished run', snapshot(out), before);
        return { cli: r, expect: 'ok' };
      },
    },
    damaged(
      'spec.json is garbage: atflow eval',
      'finished',
      (d) => fs.writeFileSync(path.join(d, 'spec.json'), 'garbage{'),
      (s, _o, d) => ['eval', d, '--n', '4', '--backend', s.backend, '--quiet'],
      /spec\.json: unreadable \(.*\); the run folder is damaged/,
    ),
    damaged(
      'state.json: epochs is not an array (--resume)',
      'unfinished',
      (d) => {
        const f = path.join(d, 'checkpoints/epoch-0002/state.json');
        fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), epochs: { 1: {} } }));
      },
      (s, out) => run(s, out, ['--resume']),
      /epoch-0002\/state\.json: damaged checkpoint state: epochs: Expected array/,
    ),
    {
      name: 'a truncated part file of an epoch before the checkpoint (--resume): no _SUCCESS, the file named',
      category: 'damaged folder',
      run: async (s, dir) => {
        const { out, runDir } = copyOf(s, dir, 'unfinished');
        const f = path.join(runDir, 'examples/epoch-0001/part-train.parquet');
        fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2));
        const r = await cli(s, run(s, out, ['--resume']));
        expectEqual('_SUCCESS', fs.existsSync(path.join(runDir, '_SUCCESS')), false);
        return {
          cli: r,
          expect: 'error',
          message:
            /tables are damaged or incomplete, so _SUCCESS is not written: .*epoch-0001\/part-train\.parquet is not a readable Parquet file/,
        };
      },
    },
    {
      name: 'a table segment deleted by hand (--resume): the missing rows are named',
      category: 'damaged folder',
      run: async (s, dir) => {
        const { out, runDir } = copyOf(s, dir, 'unfinished');
        const segs = fs
          .readdirSync(path.join(runDir, '_segments/steps'))
          .filter((f) => f.endsWith('.parquet'))
          .sort();
        fs.rmSync(path.join(runDir, '_segments/steps', segs[segs.length - 1]));
        const r = await cli(s, run(s, out, ['--resume']));
        expectEqual('_SUCCESS', fs.existsSync(path.join(runDir, '_SUCCESS')), false);
        return { cli: r, expect: 'error', message: /steps\.parquet has no rows for epoch 2 \(expected steps 0-\d+\)/ };
      },
    },
    damaged(
      'LATEST holds ../../../ev: atflow eval --checkpoint final',
      'finished',
      (d, dir) => {
        fs.mkdirSync(path.join(dir, 'ev'), { recursive: true });
        fs.copyFileSync(
          path.join(d, 'checkpoints', fs.readFileSync(path.join(d, 'checkpoints/LATEST'), 'utf8').trim(), 'model.safetensors'),
          path.join(dir, 'ev', 'model.safetensors'),
        );
        fs.writeFileSync(path.join(d, 'checkpoints/LATEST'), '../../../ev\n');
      },
      (s, _o, d) => ['eval', d, '--checkpoint', 'final', '--n', '4', '--backend', s.backend, '--quiet'],
      /checkpoints\/LATEST: points at '\.\.\/\.\.\/\.\.\/ev', which is not a complete checkpoint folder/,
    ),
    damaged(
      'eval --name ../../../x',
      'finished',
      () => undefined,
      (s, _o, d) => ['eval', d, '--name', '../../../x', '--n', '4', '--backend', s.backend, '--quiet'],
      /--name '\.\.\/\.\.\/\.\.\/x': expected a folder name under eval\//,
      (_d, dir) => {
        expectEqual(
          'a folder made outside the run folder',
          fs.existsSync(path.join(dir, 'x')) || fs.existsSync(path.join(dir, '..', 'x')),
          false,
        );
      },
    ),
    {
      name: 'examples is a link to a user folder (--resume): refused, nothing there deleted',
      category: 'damaged folder',
      run: async (s, dir) => {
        const { out, runDir } = copyOf(s, dir, 'unfinished');
        const user = userFolder(dir);
        for (const e of fs.readdirSync(path.join(runDir, 'examples')))
          fs.cpSync(path.join(runDir, 'examples', e), path.join(user.path, e), { recursive: true });
        fs.rmSync(path.join(runDir, 'examples'), { recursive: true });
        fs.symlinkSync(user.path, path.join(runDir, 'examples'));
        const mine = snapshot(user.path);
        const r = await cli(s, run(s, out, ['--resume']));
        expectEqual('the user folder behind the link', snapshot(user.path), mine);
        return {
          cli: r,
          expect: 'error',
          message: /examples is a symbolic link \(to .*users-own\); atflow neither writes nor deletes through links/,
        };
      },
    },
    {
      name: 'checkpoints is a link (--resume): refused, nothing there deleted',
      category: 'damaged folder',
      run: async (s, dir) => {
        const { out, runDir } = copyOf(s, dir, 'unfinished');
        const user = userFolder(dir);
        fs.cpSync(path.join(runDir, 'checkpoints'), user.path, { recursive: true });
        const mine = snapshot(user.path);
        fs.rmSync(path.join(runDir, 'checkpoints'), { recursive: true });
        fs.symlinkSync(user.path, path.join(runDir, 'checkpoints'));
        const r = await cli(s, run(s, out, ['--resume']));
        expectEqual('the user folder behind the link', snapshot(user.path), mine);
        return { cli: r, expect: 'error', message: /checkpoints is a symbolic link/ };
      },
    },
    {
      name: 'atflow report <a file>',
      category: 'damaged folder',
      run: async (s) => ({
        cli: await cli(s, ['report', path.join(s.reference, 'spec.json')]),
        expect: 'error',
        message: /spec\.json is not a run folder \(it is a file\)/,
      }),
    },
    {
      name: 'atflow inspect of a truncated Parquet file',
      category: 'damaged folder',
      run: async (s, dir) => {
        const f = copy(path.join(s.reference, 'epochs.parquet'), path.join(dir, 'epochs.parquet'));
        fs.truncateSync(f, 100);
        return { cli: await cli(s, ['inspect', f]), expect: 'error', message: /epochs\.parquet is not a readable Parquet file/ };
      },
    },
    damaged(
      "best.safetensors holds another epoch than the records' best: atflow eval --checkpoint best",
      'finished',
      (d) => {
        const latest = fs.readFileSync(path.join(d, 'checkpoints/LATEST'), 'utf8').trim();
        const f = path.join(d, 'checkpoints', latest, 'state.json');
        const json = JSON.parse(fs.readFileSync(f, 'utf8'));
        const held = Number(
          /"epoch":"(\d+)"/.exec(
            fs
              .readFileSync(path.join(d, 'checkpoints', latest, 'best.safetensors'))
              .subarray(8, 4096)
              .toString('latin1'),
          )?.[1],
        );
        json.best_epoch = json.epochs[json.epochs.length - 1].best_epoch = held === 1 ? 2 : 1;
        fs.writeFileSync(f, JSON.stringify(json));
      },
      (s, _o, d) => ['eval', d, '--checkpoint', 'best', '--n', '4', '--backend', s.backend, '--quiet'],
      /best\.safetensors holds the weights of epoch \d+, but .*state\.json names epoch \d+ as the best: the file does not belong to these records/,
    ),
    // ---- concurrent writers ----
    {
      name: 'two `atflow run --out X` of one config at once: one writes, the other is refused naming it',
      category: 'concurrent writers',
      run: async (s, dir) => {
        const out = path.join(dir, 'out');
        const [a, b] = await Promise.all([cli(s, run(s, out)), cli(s, run(s, out))]);
        const [won, lost] = a.status === 0 ? [a, b] : [b, a];
        expectEqual('exit codes', [won.status, lost.status].sort(), [0, 2]);
        return {
          cli: lost,
          expect: 'error',
          message: new RegExp(
            `another atflow process is writing this folder: process \\d+ on ${os.hostname()} \\(atflow run, started \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\) is running`,
          ),
          compare: path.join(out, s.runId),
        };
      },
    },
    {
      name: 'a second writer from "another node" (another host name) while the first runs: refused, heartbeat named',
      category: 'concurrent writers',
      needs: 'unshare',
      run: async (s, dir) => {
        const { out, runDir } = copyOf(s, dir, 'unfinished');
        // the killed fixture's own (dead) lock goes, so that the lock seen below is the first run's
        const lock = path.join(runDir, '.atflow.lock');
        fs.rmSync(lock, { force: true });
        const first = cli(s, run(s, out, ['--resume']));
        // the second starts once the first holds the lock
        const t0 = Date.now();
        while (!fs.existsSync(lock) || !fs.readFileSync(lock, 'utf8').includes('"token"')) {
          if (Date.now() - t0 > 300_000) throw new Error('the first run never took the lock');
          await new Promise((r) => setTimeout(r, 100));
        }
        const second = await cli(s, run(s, out, ['--resume']), {
          prefix: ['unshare', '-u', 'sh', '-c', 'hostname node-b && exec "$0" "$@"'],
        });
        const a = await first;
        expectEqual('the first run', a.status, 0);
        return {
          cli: second,
          expect: 'error',
          message: new RegExp(
            `process \\d+ on ${os.hostname()} .* holds it \\(last heartbeat \\d+ s ago; on another machine a lock is taken over after 300 s without one\\)`,
          ),
          compare: path.join(out, s.runId),
        };
      },
    },
    // ---- full disk and read-only folders ----
    {
      name: 'a full disk (tmpfs) mid-run: a clear error; after freeing space --resume ends as an uninterrupted run',
      category: 'full disk',
      needs: 'mount',
      run: async (s, dir) => {
        if (!s.canMount) throw new Error('no mount rights: the full-disk case needs root (a tmpfs); run the suite as root');
        const disk = path.join(dir, 'disk');
        const size = Math.floor(folderBytes(s.reference) * 0.55);
        fs.mkdirSync(disk);
        if (!mount(['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', disk])) throw new Error('mount -t tmpfs failed');
        let failed: Cli;
        try {
          failed = await cli(s, run(s, disk));
          copy(disk, path.join(dir, 'roomy'));
        } finally {
          unmount(disk);
        }
        if (!isClearError(failed)) return { cli: failed, expect: 'error', message: /ENOSPC/ };
        const resumed = await cli(s, run(s, path.join(dir, 'roomy'), ['--resume']));
        expectEqual('the resume after freeing space', [resumed.status, firstLine(resumed)], [0, firstLine(resumed)]);
        return { cli: failed, expect: 'error', message: /ENOSPC: no space left on device/, compare: path.join(dir, 'roomy', s.runId) };
      },
    },
    {
      name: 'a finished run re-run on a read-only folder: skipped, exit 0, nothing written',
      category: 'read-only',
      needs: 'mount',
      run: async (s, dir) => {
        const { out } = copyOf(s, dir, 'finished');
        const ro = readOnlyView(out, path.join(dir, 'ro'));
        if (!ro) throw new Error('no mount rights for a read-only bind mount');
        try {
          const before = snapshot(out);
          const r = await cli(s, run(s, ro));
          expectEqual('files changed', snapshot(out), before);
          return { cli: r, expect: 'ok' };
        } finally {
          unmount(ro);
        }
      },
    },
    {
      name: 'atflow eval on a read-only run folder: a clear error that says --out',
      category: 'read-only',
      needs: 'mount',
      run: async (s, dir) => {
        const { out } = copyOf(s, dir, 'finished');
        const ro = readOnlyView(out, path.join(dir, 'ro'));
        if (!ro) throw new Error('no mount rights for a read-only bind mount');
        try {
          return {
            cli: await cli(s, ['eval', path.join(ro, s.runId), '--n', '4', '--backend', s.backend, '--quiet']),
            expect: 'error',
            message: /cannot create the evaluation folder .*: .* is not writable \(EROFS\); --out <dir> writes the evaluation elsewhere/,
          };
        } finally {
          unmount(ro);
        }
      },
    },
    {
      name: 'an unfinished run resumed on a read-only folder: a clear error',
      category: 'read-only',
      needs: 'mount',
      run: async (s, dir) => {
        const { out } = copyOf(s, dir, 'unfinished');
        const ro = readOnlyView(out, path.join(dir, 'ro'));
        if (!ro) throw new Error('no mount rights for a read-only bind mount');
        try {
          return {
            cli: await cli(s, run(s, ro, ['--resume'])),
            expect: 'error',
            message: /cannot write to the run folder .*: .* is not writable \(EROFS\)/,
          };
        } finally {
          unmount(ro);
        }
      },
    },
  ];
  if (options.long) {
    cases.push({
      name: 'two --resume of one unfinished folder at once (a double-submitted sweep task)',
      category: 'concurrent writers',
      run: async (s, dir) => {
        const { out } = copyOf(s, dir, 'unfinished');
        const [a, b] = await Promise.all([cli(s, run(s, out, ['--resume'])), cli(s, run(s, out, ['--resume']))]);
        const [won, lost] = a.status === 0 ? [a, b] : [b, a];
        expectEqual('exit codes', [won.status, lost.status].sort(), [0, 2]);
        return {
          cli: lost,
          expect: 'error',
          message: /another atflow process is writing this folder: process \d+ on .* is running/,
          compare: path.join(out, s.runId),
        };
      },
    });
  }
  for (let k = 0; k < options.kills; k++) {
    cases.push({
      name: `kill -9 at a random moment #${k + 1}${options.long && k % 3 === 2 ? ', and again during the resume' : ''}, then --resume`,
      category: 'kill -9',
      run: async (s, dir) => {
        const out = path.join(dir, 'out');
        const at = Math.round(s.referenceMs * (0.1 + 0.85 * s.random()));
        const killed = await cli(s, run(s, out), { kill: at });
        let detail = `killed at ${at} ms (${killed.signal ?? `exit ${killed.status} before the kill`})`;
        if (killed.signal !== 'SIGKILL' && killed.status !== 0) return { cli: killed, expect: 'ok', detail };
        if (options.long && k % 3 === 2) {
          const again = await cli(s, run(s, out, ['--resume']), { kill: Math.round(s.referenceMs * (0.1 + 0.6 * s.random())) });
          detail += `; resume killed too (${again.signal ?? `exit ${again.status}`})`;
          if (again.signal !== 'SIGKILL' && again.status !== 0) return { cli: again, expect: 'ok', detail };
        }
        const resumed = await cli(s, run(s, out, ['--resume']));
        return { cli: resumed, expect: 'ok', compare: path.join(out, s.runId), detail };
      },
    });
  }
  return cases;
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)).size;
  return n;
}

// ---------------------------------------------------------------------------------------------------
// setting up and running

/** The suite's run config: 3 epochs of PGD-AT on 48 digits, Arrow streams and complexity on, so a kill lands anywhere. */
export function suiteConfig(file: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: 'fault',
      seed: 3,
      epochs: 3,
      data: { source: 'mnist', trainSize: 48, testSize: 16, batchSize: 16, testBatchSize: 16 },
      labelNoise: { kind: 'symmetric', rate: 0.25 },
      model: { name: 'mlp' },
      trainer: { name: 'pgd-at' },
      attack: { eps: 0.1, alpha: 0.05, steps: 2 },
      optimizer: { lr: 0.05 },
      schedule: { name: 'constant' },
      eval: { final: { examples: 16 } },
      logging: { arrow: true, complexityEvery: 2 },
    }),
  );
  return file;
}

/** Installs the bin the way `npm link` does, into a throw-away prefix (the checkout's dist/ must be built). */
export function npmLinkBin(prefix: string): string {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^npm_/i.test(k) || ['npm_config_cache', 'npm_config_userconfig', 'npm_config_registry'].includes(k.toLowerCase()),
    ),
  );
  const r = spawnSync('npm', ['link', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], {
    cwd: ROOT,
    env: { ...env, npm_config_prefix: prefix },
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`npm link failed: ${r.stderr}`);
  const bin = path.join(prefix, 'bin', 'atflow');
  if (!fs.existsSync(bin)) throw new Error(`npm link made no ${bin}`);
  return bin;
}

/** Seeded uniform numbers in [0, 1) (mulberry32): a failing kill moment can be replayed with the same seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The reference run and the unfinished fixture; throws if either goes wrong (nothing to compare with). */
export async function prepareSuite(
  bin: string,
  root: string,
  options: { backend?: 'wasm' | 'cpu'; seed?: number; log?: (l: string) => void } = {},
): Promise<Suite> {
  const backend = options.backend ?? 'wasm';
  const log = options.log ?? (() => undefined);
  const config = suiteConfig(path.join(root, 'fault.json'));
  const base = { bin, backend, config } as const;
  const refOut = path.join(root, 'reference');
  const ref = await cli(base, ['run', config, '--out', refOut, '--backend', backend, '--quiet']);
  if (ref.status !== 0) throw new Error(`the reference run failed: ${ref.stderr}`);
  const runId = fs.readdirSync(refOut).find((d) => fs.statSync(path.join(refOut, d)).isDirectory())!;
  log(`reference run ${runId}: ${ref.ms} ms`);
  const unfinishedOut = path.join(root, 'unfinished');
  const u = await cli(base, ['run', config, '--out', unfinishedOut, '--backend', backend, '--quiet'], {
    env: { ATFLOW_FAULT: 'epoch-boundary@2' },
  });
  if (u.signal !== 'SIGKILL') throw new Error(`the unfinished fixture was not killed after epoch 2: ${u.status} ${u.stderr}`);
  const probe = path.join(root, 'mount-probe');
  fs.mkdirSync(probe);
  const canMount = mount(['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]);
  if (canMount) unmount(probe);
  return {
    ...base,
    root,
    reference: path.join(refOut, runId),
    referenceMs: ref.ms,
    unfinished: path.join(unfinishedOut, runId),
    runId,
    canMount,
    log,
    random: seeded(options.seed ?? 24),
  };
}

/** Runs the cases (`parallel` at a time) and classifies each. */
export async function runSuite(s: Suite, cases: readonly FaultCase[], parallel = 1): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i];
      const dir = path.join(s.root, `case-${String(i).padStart(2, '0')}`);
      fs.mkdirSync(dir, { recursive: true });
      const t0 = Date.now();
      let result: CaseResult;
      try {
        const seen = await c.run(s, dir);
        const r = seen.cli;
        const clear = isClearError(r);
        const crash = !clear && r.status !== 0;
        let outcome: Outcome = crash ? 'crash' : clear ? 'clear error' : 'ok';
        let detail = [seen.detail, firstLine(r)].filter(Boolean).join('; ');
        if (!crash && (seen.expect === 'error') !== clear) {
          outcome = 'unmet';
          detail = `expected ${seen.expect === 'error' ? 'a clear error' : 'success'}: ${detail}`;
        } else if (clear && seen.message && !seen.message.test(r.stderr)) {
          outcome = 'unmet';
          detail = `message does not match ${seen.message}: ${detail}`;
        }
        let differs = false;
        if (seen.compare && outcome !== 'crash') {
          const d = await differences(s, seen.compare);
          differs = d.length > 0;
          if (differs) detail += `; differs from the uninterrupted run: ${d.join(', ')}`;
        }
        result = { name: c.name, category: c.category, outcome, compared: !!seen.compare, differs, detail, ms: Date.now() - t0 };
      } catch (e) {
        result = {
          name: c.name,
          category: c.category,
          outcome: 'unmet',
          compared: false,
          differs: false,
          detail: (e as Error).message.slice(0, 400),
          ms: Date.now() - t0,
        };
      }
      results[i] = result;
      s.log(
        `${result.outcome.padEnd(11)} ${result.differs ? 'DIFFERS ' : ''}${c.category}: ${c.name} (${(result.ms / 1000).toFixed(1)} s) ${result.detail}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  return results;
}

export interface Totals {
  readonly tried: number;
  readonly clearErrors: number;
  readonly ok: number;
  readonly crashes: number;
  readonly unmet: number;
  readonly compared: number;
  readonly differs: number;
  readonly byCategory: Record<string, number>;
}

export function totals(results: readonly CaseResult[]): Totals {
  const count = (o: Outcome) => results.filter((r) => r.outcome === o).length;
  const byCategory: Record<string, number> = {};
  for (const r of results) byCategory[r.category] = (byCategory[r.category] ?? 0) + 1;
  return {
    tried: results.length,
    clearErrors: count('clear error'),
    ok: count('ok'),
    crashes: count('crash'),
    unmet: count('unmet'),
    compared: results.filter((r) => r.compared).length,
    differs: results.filter((r) => r.differs).length,
    byCategory,
  };
}

export function formatTotals(t: Totals, seconds: number): string {
  const cats = Object.entries(t.byCategory)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return [
    `fault suite: ${t.tried} cases tried (${cats}) in ${seconds.toFixed(0)} s`,
    `  clear errors: ${t.clearErrors}`,
    `  completed as expected: ${t.ok}`,
    `  crashes: ${t.crashes} (must be 0)`,
    `  runs compared with an uninterrupted run: ${t.compared}, whose data differs: ${t.differs} (must be 0)`,
    `  expectations not met: ${t.unmet} (must be 0)`,
  ].join('\n');
}
