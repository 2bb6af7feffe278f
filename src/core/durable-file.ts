import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from './errors';
import { faultPoint } from './fault-injection';

/**
 * The one durable atomic write of atflow (docs/reliability.md, "What is durable"): every file it
 * writes — run tables, spec.json, summary.json, checkpoint weights and state, LATEST, _SUCCESS, reports,
 * sweep manifests — goes through here. A temp file next to the target is created exclusively (O_EXCL:
 * it never opens, or writes through, an existing file or link), written, fsynced, renamed over the
 * target, and the folder is fsynced, so that after a crash or a power loss the path holds the old
 * content or the new one, never part of either, and a completed write stays completed.
 *
 * It lives in core/ (not store/) because the layers below the store write files too: `saveWeights`
 * (models/) is public API.
 */

let tempCounter = 0;

/**
 * `.<name>.<pid>.<n>.tmp` next to `file` (or in `dir`, which must be on the same file system): the name
 * every temp file of atflow has (and RunFolder.removeTemp removes).
 */
export function tempPathFor(file: string, dir: string = path.dirname(file)): string {
  return path.join(dir, `.${path.basename(file)}.${process.pid}.${++tempCounter}.tmp`);
}

/**
 * Whether a folder entry is an atflow temp file or temp checkpoint folder (a writer's, maybe a dead
 * one's): `.<name>.<pid>.<n>.tmp`, `.tmp-epoch-NNNN-<pid>`, and the names earlier versions used
 * (`.<name>.<pid>.tmp`, `.<name>.tmp-<pid>-<ms>`, `LATEST.tmp-<pid>`). A user's `my.tmp-notes.txt` is not.
 */
export function isTempName(name: string): boolean {
  return (
    /^\..+\.\d+(\.\d+)?\.tmp$/.test(name) ||
    /^\.tmp-epoch-\d+-\d+$/.test(name) ||
    /^\..+\.tmp-\d+-\d+$/.test(name) ||
    /^LATEST\.tmp-\d+$/.test(name)
  );
}

/** An open temp file that becomes `target` on commit(). */
export interface TempFile {
  readonly target: string;
  readonly temp: string;
  readonly fd: number;
  /** Set once the descriptor is closed (its number may then belong to another file). */
  closed: boolean;
}

function ioError(what: string, file: string, e: unknown): AtflowError {
  if (e instanceof AtflowError) return e;
  return new AtflowError('IO', `cannot write ${file}: ${(e as Error).message}`, {
    path: file,
    what,
    code: (e as NodeJS.ErrnoException).code,
  });
}

/**
 * Creates `.<name>.<pid>.<n>.tmp` next to `target` exclusively (the folder must exist), or in `tempDir`
 * (same file system; e.g. the run folder, so that no temp file sits in a dataset folder a reader lists).
 */
export function openTemp(target: string, tempDir?: string): TempFile {
  const temp = tempPathFor(target, tempDir);
  try {
    return { target, temp, fd: fs.openSync(temp, 'wx'), closed: false };
  } catch (e) {
    throw ioError('open', target, e);
  }
}

/** Writes all of `data` at the temp file's current position. */
export function writeAll(t: TempFile, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < bytes.length) off += fs.writeSync(t.fd, bytes, off, bytes.length - off);
}

/**
 * fsync, close, rename over the target, fsync the folder. `fault` names a fault-injection point between
 * the close and the rename (the crash-safety tests' kill of a file written but not yet in place);
 * `keepOpen` leaves the descriptor open (it follows the rename: a stream that goes on growing).
 */
export function commitTemp(t: TempFile, options: { fault?: string; keepOpen?: boolean } = {}): void {
  try {
    fs.fsyncSync(t.fd);
  } catch (e) {
    abortTemp(t);
    throw ioError('fsync', t.target, e);
  }
  if (!options.keepOpen) {
    t.closed = true;
    fs.closeSync(t.fd);
  }
  if (options.fault) faultPoint(options.fault);
  try {
    fs.renameSync(t.temp, t.target);
  } catch (e) {
    fs.rmSync(t.temp, { force: true });
    throw ioError('rename', t.target, e);
  }
  fsyncDir(path.dirname(t.target));
}

/** Drops the temp file; the target is left as it was. */
export function abortTemp(t: TempFile): void {
  if (!t.closed) {
    t.closed = true;
    try {
      fs.closeSync(t.fd);
    } catch {
      // a failed close changes nothing here: the temp file goes anyway
    }
  }
  fs.rmSync(t.temp, { force: true });
}

/**
 * Writes a whole file durably and atomically (see the file comment). The folder must exist unless
 * `mkdir` is set. Errors are AtflowError 'IO' naming the file ("cannot write <file>: ENOSPC: ...").
 */
export function writeFileDurable(file: string, data: Uint8Array | string, options: { mkdir?: boolean } = {}): void {
  if (options.mkdir) {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
    } catch (e) {
      throw ioError('mkdir', file, e);
    }
  }
  const t = openTemp(file);
  try {
    writeAll(t, data);
  } catch (e) {
    abortTemp(t);
    throw ioError('write', file, e);
  }
  commitTemp(t);
}

/** JSON, two-space indented, newline-terminated, through writeFileDurable. */
export function writeJsonDurable(
  file: string,
  value: unknown,
  options: { mkdir?: boolean; replacer?: (key: string, value: unknown) => unknown } = {},
): void {
  writeFileDurable(file, JSON.stringify(value, options.replacer as never, 2) + '\n', options);
}

/** Errors of fsync on a folder that mean "not supported here" (Windows, some network file systems). */
const DIR_FSYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'EACCES', 'ENOTSUP', 'EBADF']);

/**
 * Makes the entries of a folder (a rename, a new file) durable. Where a platform cannot fsync a folder
 * the rename is still atomic, only not yet durable; any other error (EIO) is one.
 */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (e) {
    if (DIR_FSYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? '')) return;
    throw ioError('fsync', dir, e);
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    if (!DIR_FSYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? '')) throw ioError('fsync', dir, e);
  } finally {
    fs.closeSync(fd);
  }
}
