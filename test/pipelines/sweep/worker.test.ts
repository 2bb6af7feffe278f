import * as path from 'path';
import { AtflowError } from '../../../src/core/errors';
import { materialiseSweep } from '../../../src/pipelines/sweep/expand';
import { parseSweepSpec } from '../../../src/pipelines/sweep/sweep-spec';
import { resolveWorkerIndex, runSweepWorker } from '../../../src/pipelines/sweep/worker';
import { fakeRunner, readTrace, tempDir } from './helpers';

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
    const spec = parseSweepSpec({ base: { delayMs: 20 }, axes: { 'trainer.name': ['pgd-at', 'trades'], seed: [1, 2] } }, path.join(dir, 'w.json'));
    return materialiseSweep(spec, path.join(dir, 'runs')).manifestPath;
  }

  test('runs exactly the config its index names, from either variable, into the manifest\'s out', async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    const lines: string[] = [];
    expect(await runSweepWorker(manifest, { env: { ...process.env, JOB_COMPLETION_INDEX: '2' }, runner: fakeRunner, onStatus: (l) => lines.push(l) })).toBe(0);
    expect(await runSweepWorker(manifest, { env: { ...process.env, SLURM_ARRAY_TASK_ID: '1' }, runner: fakeRunner, onStatus: () => undefined })).toBe(0);
    const trace = readTrace(path.join(dir, 'runs'));
    expect(trace.filter((e) => e.event === 'end').map((e) => e.config)).toEqual(['0002.json', '0001.json']);
    expect(lines[0]).toContain('run #2 of 4 (from JOB_COMPLETION_INDEX) trainer.name=trades seed=1');
    expect(lines[1]).toContain('run #2 ok');

    // A retried task is harmless: the run contract skips the finished run.
    await runSweepWorker(manifest, { env: { JOB_COMPLETION_INDEX: '2' }, runner: fakeRunner, onStatus: () => undefined });
    expect(readTrace(path.join(dir, 'runs')).pop()).toMatchObject({ event: 'skip', config: '0002.json' });
  });

  test('a failing run makes the worker return its exit code', async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    const failing = () => ({ command: process.execPath, args: ['-e', 'process.exit(4)'] });
    expect(await runSweepWorker(manifest, { env: { SLURM_ARRAY_TASK_ID: '0' }, runner: failing, onStatus: () => undefined })).toBe(4);
  });

  test('a missing index fails before anything runs', async () => {
    const dir = tempDir();
    const manifest = manifestOf(dir);
    await expect(runSweepWorker(manifest, { env: {}, runner: fakeRunner, onStatus: () => undefined })).rejects.toThrow(/JOB_COMPLETION_INDEX/);
    expect(readTrace(path.join(dir, 'runs'))).toEqual([]);
  });
});
