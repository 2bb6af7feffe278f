import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import { materialiseSweep } from '../../src/sweep/expand';
import { parseSweepSpec } from '../../src/sweep/sweep-spec';
import { resolveWorkerIndex, runSweepWorker } from '../../src/sweep/worker';
import { errorFromStderr, readSweepStatus, readTaskStatus, taskStatusPath } from '../../src/sweep/task-status';
import { readManifest } from '../../src/sweep/manifest';
import { fakeRunner, readTrace, tempDir } from './helpers';
import { loadRuns } from '../../src/config/spec';
import { RunFolder } from '../../src/store/run-folder';

describe('resolveWorkerIndex', () => {
  test('Kubernetes: JOB_COMPLETION_INDEX', () => {
    expect(resolveWorkerIndex({ JOB_COMPLETION_INDEX: '3' }, 10)).toEqual({ index: 3, source: 'JOB_COMPLETION_INDEX' });
  });

  test('SLURM: SLURM_ARRAY_TASK_ID', () => {
    expect(resolveWorkerIndex({ SLURM_ARRAY_TASK_ID: '9' }, 10)).toEqual({ index: 9, source: 'SLURM_ARRAY_TASK_ID' });
    expect(resolveWorkerIndex({ SLURM_ARRAY_TASK_ID: '0' }, 1)).toEqual({ index: 0, source: 'SLURM_ARRAY_TASK_ID' });
  });

  test('--index wins over the environment; JOB_COMPLETION_INDEX over SLURM_ARRAY_TASK_ID', () => {
    expect(resolveWorkerIndex({ JOB_COMPLETION_INDEX: '1', SLURM_ARRAY_TASK_ID: '2' }, 10, '5').index).toBe(5);
    expect(resolveWorkerIndex({ JOB_COMPLETION_INDEX: '1', SLURM_ARRAY_TASK_ID: '2' }, 10).index).toBe(1);
    expect(resolveWorkerIndex({ JOB_COMPLETION_INDEX: '', SLURM_ARRAY_TASK_ID: '2' }, 10).index).toBe(2);
  });

  test('neither set: the error names both variables and the flag', () => {
    expect(() => resolveWorkerIndex({}, 4)).toThrow(AtflowError);
    expect(() => resolveWorkerIndex({}, 4)).toThrow(/JOB_COMPLETION_INDEX .*SLURM_ARRAY_TASK_ID.*--index <0\.\.3>/);
  });

  test('out of range or not an integer: the error names the variable, its value and the range', () => {
    expect(() => resolveWorkerIndex({ SLURM_ARRAY_TASK_ID: '10' }, 10)).toThrow(
      'sweep-worker: SLURM_ARRAY_TASK_ID="10" is not a run index of this sweep: expected an integer in 0..9 (the manifest lists 10 run(s))',
    );
    expect(() => resolveWorkerIndex({ JOB_COMPLETION_INDEX: '-1' }, 10)).toThrow('JOB_COMPLETION_INDEX="-1"');
    expect(() => resolveWorkerIndex({ JOB_COMPLETION_INDEX: '1.5' }, 10)).toThrow('JOB_COMPLETION_INDEX="1.5"');
    expect(() => resolveWorkerIndex({ JOB_COMPLETION_INDEX: 'abc' }, 10)).toThrow('expected an integer in 0..9');
  });
});

describe('runSweepWorker', () => {
  function manifestOf(dir: string): string {
    const spec = parseSweepSpec(
      { base: { delayMs: 20 }, axes: { 'trainer.name': ['pgd-at', 'trades'], seed: [1, 2] } },
      path.join(dir, 'w.json'),
    );
    return materialiseSweep(spec, path.join(dir, 'runs')).manifestPath;
  }

  test("runs exactly the config its index names, from either variable, into the manifest's out", async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    const lines: string[] = [];
    expect(
      await runSweepWorker(manifest, {
        env: { ...process.env, JOB_COMPLETION_INDEX: '2' },
        runner: fakeRunner,
        onStatus: (l) => lines.push(l),
      }),
    ).toBe(0);
    expect(
      await runSweepWorker(manifest, { env: { ...process.env, SLURM_ARRAY_TASK_ID: '1' }, runner: fakeRunner, onStatus: () => undefined }),
    ).toBe(0);
    const trace = readTrace(path.join(dir, 'runs'));
    expect(trace.filter((e) => e.event === 'end').map((e) => e.config)).toEqual(['0002.json', '0001.json']);
    expect(lines[0]).toContain('run #2 of 4 (from JOB_COMPLETION_INDEX) trainer.name=trades seed=1');
    expect(lines[1]).toContain('run #2 ok');

    // A retried task is harmless: the run contract skips the finished run.
    await runSweepWorker(manifest, { env: { JOB_COMPLETION_INDEX: '2' }, runner: fakeRunner, onStatus: () => undefined });
    expect(readTrace(path.join(dir, 'runs')).pop()).toMatchObject({ event: 'skip', config: '0002.json' });
  });

  test('a double-submitted task stops without running, and leaves the status of the task that runs the point alone', async () => {
    const dir = tempDir();
    const base = {
      name: 'dup',
      epochs: 1,
      data: { source: 'mnist', trainSize: 16, testSize: 8, batchSize: 8 },
      model: { name: 'mlp' },
      trainer: { name: 'pgd-at' },
    };
    const spec = parseSweepSpec({ base, axes: { seed: [1, 2] } }, path.join(dir, 'dup.json'));
    const manifest = materialiseSweep(spec, path.join(dir, 'runs')).manifestPath;
    const m = readManifest(manifest);
    // the first task of point 1 is running: its run folder is locked by a live process (this one)
    const folder = RunFolder.of(m.outDir, loadRuns(m.runs[1].configPath)[0].runId);
    folder.lock('atflow run');
    try {
      const lines: string[] = [];
      expect(
        await runSweepWorker(manifest, { env: { SLURM_ARRAY_TASK_ID: '1' }, runner: fakeRunner, onStatus: (l) => lines.push(l) }),
      ).toBe(2);
      expect(lines.join('\n')).toMatch(
        new RegExp(
          `run #1 is being written by another task \\(dup-[0-9a-f]{12}: process ${process.pid} on .* is running\\); this duplicate stops without touching it`,
        ),
      );
      expect(fs.existsSync(taskStatusPath(path.dirname(manifest), 1))).toBe(false);
      expect(fs.existsSync(path.join(m.outDir, '_trace.jsonl'))).toBe(false); // no run was started
    } finally {
      folder.unlock();
    }
  });

  test('a failing run makes the worker return its exit code', async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    const failing = () => ({ command: process.execPath, args: ['-e', 'process.exit(4)'] });
    expect(await runSweepWorker(manifest, { env: { SLURM_ARRAY_TASK_ID: '0' }, runner: failing, onStatus: () => undefined })).toBe(4);
  });

  test('each task keeps its own status file: scheduler ids, attempts, completed', async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    const sweepDir = path.dirname(manifest);
    const env = { SLURM_JOB_ID: '17', SLURM_ARRAY_JOB_ID: '15', SLURM_ARRAY_TASK_ID: '1' };
    expect(await runSweepWorker(manifest, { env, runner: fakeRunner, onStatus: () => undefined })).toBe(0);
    expect(readTaskStatus(sweepDir, 1)).toMatchObject({
      index: 1,
      state: 'completed',
      attempt: 1,
      exitCode: 0,
      scheduler: { kind: 'slurm', jobId: '17', arrayJobId: '15', arrayTaskId: '1' },
    });
    expect(readTaskStatus(sweepDir, 1)?.error).toBeUndefined();
    expect(fs.existsSync(taskStatusPath(sweepDir, 0))).toBe(false); // no task touches another's file
    await runSweepWorker(manifest, {
      env: { JOB_COMPLETION_INDEX: '1', HOSTNAME: 'atflow-w-1-x' },
      runner: fakeRunner,
      onStatus: () => undefined,
    });
    expect(readTaskStatus(sweepDir, 1)).toMatchObject({
      attempt: 2,
      state: 'completed',
      scheduler: { kind: 'kubernetes', pod: 'atflow-w-1-x', completionIndex: '1' },
    });
    const merged = readSweepStatus(readManifest(manifest));
    expect(merged.map((p) => p.state)).toEqual(['pending', 'completed', 'pending', 'pending']);
  });

  test("a failed run's error message is recorded: the atflow: line it printed", async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    const failing = () => ({
      command: process.execPath,
      args: ['-e', 'process.stderr.write("loading\\natflow: idx: data files not found in /nope (does not exist)\\n"); process.exit(2)'],
    });
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runSweepWorker(manifest, { env: { SLURM_ARRAY_TASK_ID: '3' }, runner: failing, onStatus: () => undefined })).toBe(2);
    } finally {
      stderr.mockRestore();
    }
    expect(readTaskStatus(path.dirname(manifest), 3)).toMatchObject({
      state: 'failed',
      exitCode: 2,
      error: 'idx: data files not found in /nope (does not exist)',
    });
  });

  test('SIGTERM from the scheduler (the abort signal) stops the run and records the point as cancelled', async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    const slow = () => ({ command: process.execPath, args: ['-e', 'setTimeout(() => {}, 30000)'] });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    const code = await runSweepWorker(manifest, {
      env: { SLURM_ARRAY_TASK_ID: '0' },
      runner: slow,
      onStatus: () => undefined,
      signal: abort.signal,
    });
    expect(code).not.toBe(0);
    expect(readTaskStatus(path.dirname(manifest), 0)).toMatchObject({
      state: 'cancelled',
      signal: 'SIGTERM',
      error: expect.stringContaining('cancelled'),
    });
  });

  test('errorFromStderr: the last atflow: line, else the thrown error, else the last line', () => {
    expect(errorFromStderr('x\natflow: first\nmore\natflow: second\n')).toBe('second');
    expect(errorFromStderr('TypeError: boom\n    at f (a.js:1:1)\n')).toBe('TypeError: boom');
    expect(errorFromStderr('killed\n\n')).toBe('killed');
    expect(errorFromStderr('')).toBeUndefined();
  });

  test('a missing index fails before anything runs', async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    await expect(runSweepWorker(manifest, { env: {}, runner: fakeRunner, onStatus: () => undefined })).rejects.toThrow(
      /JOB_COMPLETION_INDEX/,
    );
    expect(readTrace(path.join(dir, 'runs'))).toEqual([]);
  });
});
