import * as fs from 'fs';
import * as path from 'path';
import { runSweep } from '../../src/sweep/run-sweep';
import { dnsLabel, shellQuote } from '../../src/sweep/array-executor';
import { AtflowError } from '../../src/core/errors';
import { tempDir, writeJson } from './helpers';
import YAML from 'yaml';

/** The job file through a real YAML 1.2 parser (the one kubectl's YAML-to-JSON step agrees with). */
function parseSimpleYaml(text: string): unknown {
  return YAML.parse(text);
}

function arraySweep(dir: string, executor: Record<string, unknown>): string {
  return writeJson(path.join(dir, 'cfg', 'noise.json'), {
    base: { seed: 0 },
    axes: { 'trainer.name': ['pgd-at', 'trades'], 'labelNoise.rate': [0.2, 0.4, 0.6, 0.8, 1.0] },
    executor: { kind: 'array', ...executor },
  });
}

describe('array executor', () => {
  test('writes a Kubernetes Indexed Job: completions = #runs, the worker command on the manifest', async () => {
    const dir = tempDir();
    const sweepFile = arraySweep(dir, {
      parallelism: 4,
      resources: { gpus: 1, cpus: 8, memoryGiB: 1.5 },
      kubernetes: { image: 'registry.example/atflow:0.1', workdir: '/work', pvc: 'atflow-data', namespace: 'ml' },
    });
    const r = await runSweep(sweepFile, { out: path.join(dir, 'runs'), cwd: dir, onStatus: () => undefined });
    if (r.kind !== 'array') throw new Error('expected the array executor');
    expect(r.files.kubernetesPath).toBe(path.join(dir, 'runs', 'sweeps', 'noise', 'job.yaml'));
    const job = parseSimpleYaml(fs.readFileSync(r.files.kubernetesPath, 'utf8')) as any;
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.kind).toBe('Job');
    expect(job.metadata.name).toBe('atflow-noise');
    expect(job.metadata.namespace).toBe('ml');
    expect(job.spec.completionMode).toBe('Indexed');
    expect(job.spec.completions).toBe(10);
    expect(job.spec.parallelism).toBe(4);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    const [container] = job.spec.template.spec.containers;
    expect(container.image).toBe('registry.example/atflow:0.1');
    expect(container.workingDir).toBe('/work');
    expect(container.command).toEqual(['atflow', 'sweep-worker', 'runs/sweeps/noise/manifest.json']);
    expect(container.resources.limits).toEqual({ 'nvidia.com/gpu': 1, cpu: '8', memory: '1536Mi' });
    expect(container.resources.requests).toEqual({ cpu: '8', memory: '1536Mi' });
    // A failing point is retried on its own, then given up while the other indices go on.
    expect(job.spec.backoffLimitPerIndex).toBe(2);
    expect(job.spec.backoffLimit).toBeUndefined();
    expect(container.volumeMounts).toEqual([{ name: 'work', mountPath: '/work' }]);
    expect(job.spec.template.spec.volumes).toEqual([{ name: 'work', persistentVolumeClaim: { claimName: 'atflow-data' } }]);
    // The command's manifest path resolves from the working directory to the manifest that was written.
    expect(path.resolve(dir, container.command[2])).toBe(r.files.manifestPath);
    expect(JSON.parse(fs.readFileSync(r.files.manifestPath, 'utf8')).runs).toHaveLength(10);
  });

  test('defaults: parallelism = #runs, 1 CPU requested, the runs tree on the claim "atflow-runs", atflow from the image', async () => {
    const dir = tempDir();
    const r = await runSweep(arraySweep(dir, {}), { out: path.join(dir, 'runs'), cwd: dir, onStatus: () => undefined });
    if (r.kind !== 'array') throw new Error('expected the array executor');
    const job = parseSimpleYaml(fs.readFileSync(r.files.kubernetesPath, 'utf8')) as any;
    expect(job.spec.parallelism).toBe(10);
    expect(job.spec.template.spec.containers[0].resources).toEqual({ requests: { cpu: '1' }, limits: { cpu: '1' } });
    expect(job.spec.template.spec.volumes).toEqual([{ name: 'work', persistentVolumeClaim: { claimName: 'atflow-runs' } }]);
    expect(job.spec.template.spec.containers[0].volumeMounts).toEqual([{ name: 'work', mountPath: '/workspace' }]);
    expect(job.spec.template.spec.containers[0].command[0]).toBe('atflow');
    expect(job.spec.template.spec.containers[0].image).toBe('atflow:latest');
  });

  test('writes a SLURM script with --array=0-(n-1), throttled by parallelism, running the same worker', async () => {
    const dir = tempDir();
    const sweepFile = arraySweep(dir, {
      dir: 'jobs',
      parallelism: 3,
      command: ['node', 'bin/atflow.js'],
      resources: { gpus: 2, cpus: 4, memoryGiB: 16 },
      slurm: { partition: 'gpu', time: '2-00:00:00' },
    });
    const r = await runSweep(sweepFile, { out: path.join(dir, 'runs'), cwd: dir, onStatus: () => undefined });
    if (r.kind !== 'array') throw new Error('expected the array executor');
    expect(r.files.slurmPath).toBe(path.join(dir, 'jobs', 'sweep.sbatch'));
    const script = fs.readFileSync(r.files.slurmPath, 'utf8');
    const lines = script.split('\n');
    expect(lines[0]).toBe('#!/bin/bash');
    const directives = Object.fromEntries(
      lines.filter((l) => l.startsWith('#SBATCH --')).map((l) => l.slice('#SBATCH --'.length).split(/=(.*)/s).slice(0, 2)),
    );
    expect(directives).toEqual({
      'job-name': 'atflow-noise',
      array: '0-9%3',
      chdir: dir,
      output: 'runs/sweeps/noise/logs/slurm-%A_%a.log',
      'cpus-per-task': '4',
      mem: '16384M',
      gres: 'gpu:2',
      partition: 'gpu',
      time: '2-00:00:00',
    });
    // sbatch stops reading directives at the first command: all of them come before it.
    const firstCommand = lines.findIndex((l) => l !== '' && !l.startsWith('#'));
    expect(lines.slice(firstCommand).some((l) => l.startsWith('#SBATCH'))).toBe(false);
    expect(lines[lines.length - 2]).toBe('exec node bin/atflow.js sweep-worker runs/sweeps/noise/manifest.json');
    // wasm's data-parallel workers follow the task's CPUs (not the node's), unless the submitter set them
    const workersLine = lines[lines.length - 3];
    expect(workersLine).toBe('export ATFLOW_CORES="${ATFLOW_CORES:-${SLURM_CPUS_PER_TASK:-1}}"');
    const { spawnSync: sh } = require('child_process') as typeof import('child_process');
    const value = (env: Record<string, string>) =>
      sh('bash', ['-c', `${workersLine}; echo "$ATFLOW_CORES"`], {
        env: { PATH: process.env.PATH!, ...env },
        encoding: 'utf8',
      }).stdout.trim();
    expect([value({ SLURM_CPUS_PER_TASK: '4' }), value({}), value({ SLURM_CPUS_PER_TASK: '4', ATFLOW_CORES: '2' })]).toEqual([
      '4',
      '1',
      '2',
    ]);
    expect(fs.existsSync(path.join(dir, 'runs', 'sweeps', 'noise', 'logs'))).toBe(true); // SLURM will not create it
    expect(fs.statSync(r.files.slurmPath).mode & 0o111).not.toBe(0);
  });

  test('no throttle when parallelism covers every run; bash accepts the script', async () => {
    const dir = tempDir();
    const r = await runSweep(arraySweep(dir, { parallelism: 50 }), { out: path.join(dir, 'runs'), cwd: dir, onStatus: () => undefined });
    if (r.kind !== 'array') throw new Error('expected the array executor');
    const script = fs.readFileSync(r.files.slurmPath, 'utf8');
    expect(script).toContain('#SBATCH --array=0-9\n');
    expect(script).not.toContain('--gres');
    const { spawnSync } = await import('child_process');
    expect(spawnSync('bash', ['-n', r.files.slurmPath]).status).toBe(0);
  });

  test('a working directory with a space cannot be written into #SBATCH lines: clear error', async () => {
    const dir = path.join(tempDir(), 'my dir');
    fs.mkdirSync(dir);
    const sweepFile = arraySweep(dir, {});
    await expect(runSweep(sweepFile, { out: path.join(dir, 'runs'), cwd: dir, onStatus: () => undefined })).rejects.toThrow(
      /SLURM --chdir: '.*my dir' contains whitespace/,
    );
    await expect(runSweep(sweepFile, { out: path.join(dir, 'runs'), cwd: dir, onStatus: () => undefined })).rejects.toBeInstanceOf(
      AtflowError,
    );
  });

  test('names and arguments are made safe for Kubernetes and the shell', () => {
    expect(dnsLabel('atflow-Random_Labels.v2')).toBe('atflow-random-labels-v2');
    expect(dnsLabel(`atflow-${'x'.repeat(80)}`)).toHaveLength(63);
    expect(shellQuote('runs/sweeps/a/manifest.json')).toBe('runs/sweeps/a/manifest.json');
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
  });
});
