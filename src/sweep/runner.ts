import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';

/**
 * How one sweep point is executed: a command line for a child process, given the point's config file and
 * the output root. The default is `atflow run`, which owns idempotency (skips runs with _SUCCESS, resumes
 * unfinished ones); tests inject a small script with the same contract.
 */
export type RunnerCommand = (configPath: string, outDir: string) => { command: string; args: string[] };

export interface AtflowRunOptions {
  /** Passed on as `atflow run --backend`. */
  backend?: string;
  /** bin/atflow.js to start; default: this package's. */
  binPath?: string;
  /** Keep the progress bar and summary (off by default: pool output interleaves, logs go to files). */
  verbose?: boolean;
  /**
   * Pass `--resume` (default true): `atflow run` refuses to touch an unfinished run folder without it, and
   * a sweep is resumed by launching it again. Fresh runs are unaffected.
   */
  resume?: boolean;
  /** More `atflow run` arguments, after the others (the CLI's variant processes: --only, --set, --plugin, ...). */
  args?: readonly string[];
}

/** `node <repo>/bin/atflow.js run <config> --out <out> --resume --quiet [--backend b] [args...]` */
export function atflowRunCommand(opts: AtflowRunOptions = {}): RunnerCommand {
  const bin = opts.binPath ?? findAtflowBin();
  return (configPath, outDir) => ({
    command: process.execPath,
    args: [
      bin,
      'run',
      configPath,
      '--out',
      outDir,
      ...(opts.resume === false ? [] : ['--resume']),
      ...(opts.verbose ? [] : ['--quiet']),
      ...(opts.backend ? ['--backend', opts.backend] : []),
      ...(opts.args ?? []),
    ],
  });
}

/** bin/atflow.js of the package this file belongs to, found by walking up (works from src/ and dist/). */
export function findAtflowBin(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'bin', 'atflow.js');
    if (fs.existsSync(candidate) && fs.existsSync(path.join(dir, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new AtflowError('IO', `cannot find bin/atflow.js above ${from}`);
  }
}

export interface ChildRunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  /** With `captureStderr`: the last few KiB the child wrote to stderr. */
  stderrTail?: string;
}

export interface SpawnRunOptions {
  env?: NodeJS.ProcessEnv;
  /** Append the child's stdout and stderr to this file; default: share this process's stdio. */
  logFile?: string;
  /** Aborting sends SIGTERM to the child (which then resolves with its exit status). */
  signal?: AbortSignal;
  /** Pass the child's stderr on to ours and keep its tail (`stderrTail`): why a run failed. Ignored with logFile. */
  captureStderr?: boolean;
  /** Each line the child writes (stdout and stderr), instead of sharing our stdio. Ignored with logFile. */
  onLine?: (line: string) => void;
}

/** Calls `onLine` per complete line of a stream, and once more for an unterminated last line at its end. */
function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop()!;
    for (const l of lines) onLine(l);
  });
  stream.on('end', () => {
    if (rest) onLine(rest);
  });
}

const STDERR_TAIL_BYTES = 8192;

/** Starts one run as a child process and resolves when it exits (never rejects for a failing run). */
export function spawnRun(runner: RunnerCommand, configPath: string, outDir: string, opts: SpawnRunOptions = {}): Promise<ChildRunResult> {
  const { command, args } = runner(configPath, outDir);
  const started = process.hrtime.bigint();
  let logFd: number | undefined;
  if (opts.logFile) {
    fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
    logFd = fs.openSync(opts.logFile, 'a');
    fs.writeSync(logFd, `\n=== ${new Date().toISOString()} ${[command, ...args].join(' ')}\n`);
  }
  return new Promise<ChildRunResult>((resolve) => {
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    const lines = opts.onLine !== undefined && logFd === undefined;
    const capture = opts.captureStderr === true && logFd === undefined && !lines;
    const child = spawn(command, args, {
      env: opts.env ?? process.env,
      stdio:
        logFd !== undefined
          ? ['ignore', logFd, logFd]
          : lines
            ? ['ignore', 'pipe', 'pipe']
            : capture
              ? ['inherit', 'inherit', 'pipe']
              : 'inherit',
    });
    if (lines) for (const stream of [child.stdout!, child.stderr!]) splitLines(stream, opts.onLine!);
    let tail = '';
    if (capture)
      child.stderr?.on('data', (chunk: Buffer) => {
        process.stderr.write(chunk);
        tail = (tail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
      });
    // The child holds its own copy of the descriptor.
    if (logFd !== undefined) fs.closeSync(logFd);
    const onAbort = () => child.kill('SIGTERM');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let settled = false;
    const finish = (r: ChildRunResult) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    child.on('error', (e) => {
      if (opts.logFile) fs.appendFileSync(opts.logFile, `cannot start ${command}: ${e.message}\n`);
      finish({
        exitCode: 127,
        signal: null,
        seconds: seconds(),
        ...(capture ? { stderrTail: `cannot start ${command}: ${e.message}` } : {}),
      });
    });
    // 'close' (not 'exit'): the piped stderr has then been read to its end.
    child.on('close', (exitCode, signal) => finish({ exitCode, signal, seconds: seconds(), ...(capture ? { stderrTail: tail } : {}) }));
  });
}
