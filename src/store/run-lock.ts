import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { AtflowError } from '../core/errors';
import { tempPathFor } from '../core/durable-file';

/**
 * One writer per folder (a run folder, an `atflow eval` folder). The lock is a file created with O_EXCL
 * (atomic on local file systems and on NFSv3+, Lustre, GPFS) that names its holder: pid, host, start
 * time, the host's boot id and pid namespace, the process's own start tick, and a random token. A second
 * writer is refused with an error naming the holder. A lock whose holder is dead is taken over:
 *
 * - Same machine (host name, boot id and pid namespace all equal): the holder is alive when its pid
 *   exists and has the start tick the lock recorded (so a pid reused by another process does not count).
 * - Another machine (SLURM tasks on two nodes, containers): pids say nothing there, so the holder keeps
 *   the file's mtime fresh by rewriting it every `heartbeat` from a worker thread (a busy main thread does
 *   not delay it), and a lock whose mtime is older than `stale` is dead. Ages are measured against the
 *   mtime of a probe file created next to the lock, so both times come from the file server's clock
 *   and the nodes' clocks may disagree. NFS caches attributes for up to ~60 s: keep `stale` well above.
 *
 * Taking over is serialised by a second O_EXCL file (`<lock>.takeover`): of two processes that find the
 * same dead lock, one replaces it and the other then finds a live lock. A holder that finds its lock gone
 * or replaced (it was frozen longer than `stale`) refuses to commit anything (assertHeld).
 */

export const LOCK_FILE = '.atflow.lock';

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  /** ISO-8601 UTC. */
  readonly started_at: string;
  /** What holds it: 'atflow run', 'atflow eval', ... */
  readonly command: string;
  readonly boot_id: string | null;
  readonly pid_ns: string | null;
  /** The holder's start time in clock ticks after boot (/proc/<pid>/stat field 22), when known. */
  readonly proc_start: string | null;
  readonly heartbeat_ms: number;
  readonly token: string;
}

export interface LockOptions {
  /** Who is taking the lock, for the message the next writer gets (default 'atflow'). */
  readonly command?: string;
  /** A lock of another machine without heartbeat for this long is dead (default ATFLOW_LOCK_STALE_S or 300 s). */
  readonly staleMs?: number;
  /** How often the holder rewrites the lock (default stale / 20, at least 250 ms). */
  readonly heartbeatMs?: number;
}

export interface FolderLock {
  readonly file: string;
  readonly holder: LockHolder;
  /** Why a dead holder's lock was taken over, when it was (for a warning); else null. */
  readonly tookOver: string | null;
  /** Throws unless this process still holds the lock (call before committing a checkpoint or _SUCCESS). */
  assertHeld(): void;
  /** Stops the heartbeat and removes the lock if it is still this process's. Idempotent. */
  release(): void;
}

/** The verdict on an existing lock. */
export interface LockState {
  readonly holder: LockHolder | null;
  readonly alive: boolean;
  /** In words: "process 123 on node1 (started …) is running", "no heartbeat for 412 s", ... */
  readonly why: string;
}

function readOr<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

const bootId = readOr(() => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), null);
const pidNs = readOr(() => fs.readlinkSync('/proc/self/ns/pid'), null);

/** Field 22 of /proc/<pid>/stat (start time in ticks after boot), or null where there is no /proc. */
function procStart(pid: number): string | null {
  return readOr(() => {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  }, null);
}

function defaultStaleMs(): number {
  const s = Number(process.env.ATFLOW_LOCK_STALE_S);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 300_000;
}

function describe(h: LockHolder): string {
  return `process ${h.pid} on ${h.host} (${h.command}, started ${h.started_at})`;
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as LockHolder;
    return h && typeof h === 'object' && Number.isInteger(h.pid) && typeof h.host === 'string' && typeof h.token === 'string' ? h : null;
  } catch {
    return null;
  }
}

/** Milliseconds since the file's last change, on the file server's clock (a probe file's mtime as "now"). */
function ageMs(file: string, mtimeMs: number): number {
  const probe = tempPathFor(file);
  try {
    const fd = fs.openSync(probe, 'wx');
    try {
      fs.writeSync(fd, 'probe');
      return Math.max(0, fs.fstatSync(fd).mtimeMs - mtimeMs);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(probe, { force: true });
    }
  } catch {
    return Math.max(0, Date.now() - mtimeMs); // a folder we cannot write to: this machine's clock
  }
}

function sameMachine(h: LockHolder): boolean {
  return h.host === os.hostname() && h.boot_id === bootId && h.pid_ns === pidNs && bootId !== null;
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads and judges the lock file in `dir`; null when there is none. */
export function inspectLock(dir: string, options: Pick<LockOptions, 'staleMs'> = {}): LockState | null {
  const file = path.join(dir, LOCK_FILE);
  let text: string;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
    if (!st.isFile()) {
      throw new AtflowError(
        'DATA_FILE',
        `${file} is not a file (${st.isSymbolicLink() ? 'a symbolic link' : 'a folder'}); remove it: it should be atflow's lock file`,
        { path: file },
      );
    }
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const staleMs = options.staleMs ?? defaultStaleMs();
  const holder = parseHolder(text);
  const age = ageMs(file, st.mtimeMs);
  if (!holder) {
    // created but not yet written (or its writer died right then): give it the stale period
    const alive = age <= staleMs;
    return {
      holder: null,
      alive,
      why: alive ? `a lock being written ${Math.round(age / 1000)} s ago` : `an unreadable lock left ${Math.round(age / 1000)} s ago`,
    };
  }
  if (sameMachine(holder)) {
    if (!pidExists(holder.pid)) return { holder, alive: false, why: `${describe(holder)} is no longer running` };
    const now = procStart(holder.pid);
    if (holder.proc_start !== null && now !== null && now !== holder.proc_start) {
      return { holder, alive: false, why: `${describe(holder)} is no longer running (pid ${holder.pid} now belongs to another process)` };
    }
    if (holder.proc_start === null || now === null) {
      // no /proc: a pid can have been reused; the heartbeat decides
      if (age > staleMs) return { holder, alive: false, why: `${describe(holder)}: no heartbeat for ${Math.round(age / 1000)} s` };
    }
    return { holder, alive: true, why: `${describe(holder)} is running` };
  }
  if (age > staleMs)
    return {
      holder,
      alive: false,
      why: `${describe(holder)}: no heartbeat for ${Math.round(age / 1000)} s (more than ${Math.round(staleMs / 1000)} s)`,
    };
  return {
    holder,
    alive: true,
    why:
      `${describe(holder)} holds it (last heartbeat ${Math.round(age / 1000)} ` +
      `s ago; on another machine a lock is taken over after ${Math.round(staleMs / 1000)} ` +
      `s without one)`,
  };
}

function heldError(dir: string, state: LockState): AtflowError {
  return new AtflowError(
    'RESUME',
    `${dir}: another atflow process is writing this folder: ${state.why}; ` +
      `two writers would corrupt it. Wait for it to end, stop it, or use ` +
      `another --out (lock: ${path.join(dir, LOCK_FILE)})`,
    { dir, holder: state.holder },
  );
}

const HEARTBEAT = `
const { workerData } = require('worker_threads');
const fs = require('fs');
const bytes = Buffer.from(workerData.text);
setInterval(() => { try { fs.writeSync(workerData.fd, bytes, 0, bytes.length, 0); } catch (e) {} }, workerData.ms);
`;

/** Locks held by this process: removed on exit too (e.g. a second Ctrl-C's process.exit). */
const held = new Set<() => void>();
let exitHook = false;

function createLock(file: string, holder: LockHolder): number | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw new AtflowError('IO', `cannot create the lock ${file}: ${(e as Error).message}`, { path: file });
  }
  try {
    fs.writeSync(fd, JSON.stringify(holder, null, 1) + '\n');
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw new AtflowError('IO', `cannot write the lock ${file}: ${(e as Error).message}`, { path: file });
  }
  return fd;
}

/** Replaces a dead holder's lock, unless someone else is doing so or did it since `dead` was read. */
function takeOver(file: string, dead: LockState, holder: LockHolder): number | null {
  const guard = `${file}.takeover`;
  let g: number;
  try {
    g = fs.openSync(guard, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new AtflowError('IO', `cannot create ${guard}: ${(e as Error).message}`, { path: guard });
    // a takeover takes milliseconds: a guard older than a minute belongs to a process that died in it
    const st = readOr(() => fs.statSync(guard), null);
    if (st && ageMs(guard, st.mtimeMs) > 60_000) fs.rmSync(guard, { force: true });
    return null;
  }
  try {
    const now = parseHolder(readOr(() => fs.readFileSync(file, 'utf8'), ''));
    if ((now?.token ?? null) !== (dead.holder?.token ?? null)) return null; // replaced meanwhile: judge again
    fs.rmSync(file, { force: true });
    return createLock(file, holder);
  } finally {
    fs.closeSync(g);
    fs.rmSync(guard, { force: true });
  }
}

/**
 * Takes the lock of `dir` (which must exist) or throws an AtflowError naming the live holder. A dead
 * holder's lock is taken over (`tookOver` says whose).
 */
export function acquireLock(dir: string, options: LockOptions = {}): FolderLock {
  const file = path.join(dir, LOCK_FILE);
  const staleMs = options.staleMs ?? defaultStaleMs();
  const heartbeatMs = options.heartbeatMs ?? Math.max(250, Math.round(staleMs / 20));
  const holder: LockHolder = {
    pid: process.pid,
    host: os.hostname(),
    started_at: new Date().toISOString(),
    command: options.command ?? 'atflow',
    boot_id: bootId,
    pid_ns: pidNs,
    proc_start: procStart(process.pid),
    heartbeat_ms: heartbeatMs,
    token: randomBytes(12).toString('hex'),
  };
  let fd: number | null = null;
  let tookOver: string | null = null;
  const deadline = Date.now() + 5_000;
  while (fd === null) {
    fd = createLock(file, holder);
    if (fd !== null) break;
    const state = inspectLock(dir, { staleMs });
    if (state === null) continue; // released meanwhile
    if (state.alive) throw heldError(dir, state);
    fd = takeOver(file, state, holder);
    if (fd !== null) tookOver = state.why;
    else if (Date.now() > deadline) throw heldError(dir, { ...state, why: `${state.why}, and another process is taking the lock over` });
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  }
  const lockFd = fd;
  const ino = fs.fstatSync(lockFd).ino;
  const worker = new Worker(HEARTBEAT, {
    eval: true,
    workerData: { fd: lockFd, ms: heartbeatMs, text: JSON.stringify(holder, null, 1) + '\n' },
  });
  worker.unref();
  let released = false;
  const mine = (): boolean => {
    const st = readOr(() => fs.statSync(file), null);
    return st !== null && st.ino === ino && parseHolder(readOr(() => fs.readFileSync(file, 'utf8'), ''))?.token === holder.token;
  };
  const release = (): void => {
    if (released) return;
    released = true;
    held.delete(release);
    void worker.terminate();
    if (mine()) fs.rmSync(file, { force: true });
    readOr(() => fs.closeSync(lockFd), undefined);
  };
  held.add(release);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const r of [...held]) readOr(r, undefined);
    });
  }
  return {
    file,
    holder,
    tookOver,
    assertHeld() {
      if (released || !mine()) {
        const now = inspectLock(dir, { staleMs });
        throw new AtflowError(
          'RESUME',
          `${dir}: this process (pid ${holder.pid} on ${holder.host}) no longer ` +
            `holds the folder's lock${now?.holder ? `: ${describe(now.holder)} took it over` : ''} ` +
            `(was this process stopped for longer than ${Math.round(staleMs / 1000)} ` +
            `s?); nothing more is written`,
          { dir },
        );
      }
    },
    release,
  };
}
