import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { findAtflowBin } from './runner';
import type { SweepManifest } from './manifest';
import type { ArrayExecutorSpec } from './sweep-spec';
import { writeFileDurable } from '../core/durable-file';

/**
 * The `array` executor launches nothing: it writes a Kubernetes Indexed Job and a SLURM array script in
 * which task i runs `atflow sweep-worker <manifest>`, and the worker picks point i from
 * JOB_COMPLETION_INDEX / SLURM_ARRAY_TASK_ID. Paths inside both files are relative to the directory
 * `atflow sweep` ran in (`base`), which must be the task's working directory on the cluster.
 */
export interface ArrayJobFiles {
  kubernetesPath: string;
  slurmPath: string;
  manifestPath: string;
}

export interface ArrayJobParams {
  sweep: string;
  runs: number;
  /** Manifest path as the task sees it (relative to its working directory). */
  manifest: string;
  /** Folder for SLURM's per-task logs, relative to the working directory. */
  logsDir: string;
  /** Absolute working directory for SLURM (`--chdir`). */
  slurmChdir: string;
  spec: ArrayExecutorSpec;
}

/** Writes job.yaml and sweep.sbatch (into `spec.dir`, default the manifest's folder) and returns their paths. */
export function writeArrayJobs(manifest: SweepManifest, spec: ArrayExecutorSpec, base: string = process.cwd()): ArrayJobFiles {
  const dir = path.resolve(base, spec.dir ?? path.dirname(manifest.file));
  const logs = path.join(path.dirname(manifest.file), 'logs');
  // SLURM does not create the folder of --output, and a task whose log cannot be opened fails silently.
  fs.mkdirSync(logs, { recursive: true });
  const params: ArrayJobParams = {
    sweep: manifest.sweep,
    runs: manifest.runs.length,
    manifest: relativeTo(base, manifest.file),
    logsDir: relativeTo(base, logs),
    slurmChdir: spec.slurm.chdir ?? path.resolve(base),
    spec,
  };
  const kubernetesPath = path.join(dir, 'job.yaml');
  const slurmPath = path.join(dir, 'sweep.sbatch');
  writeFileDurable(kubernetesPath, kubernetesIndexedJob(params), { mkdir: true });
  writeFileDurable(slurmPath, slurmArrayScript(params), { mkdir: true });
  fs.chmodSync(slurmPath, 0o755);
  return { kubernetesPath, slurmPath, manifestPath: manifest.file };
}

/** A Kubernetes `batch/v1` Job with completionMode Indexed: one completion per sweep point. */
export function kubernetesIndexedJob(p: ArrayJobParams): string {
  const { spec } = p;
  const name = dnsLabel(`atflow-${p.sweep}`);
  const q = (s: string) => JSON.stringify(s); // JSON strings are valid YAML double-quoted scalars
  const command = [...(spec.command ?? ['atflow']), 'sweep-worker', p.manifest];
  // The scheduler places a pod by its requests; limits keep a task from taking a neighbour's share.
  // GPUs are an extended resource: a limit alone (the request defaults to it).
  const cpu = `cpu: ${q(String(spec.resources.cpus ?? 1))}`;
  const memory = spec.resources.memoryGiB !== undefined ? [`memory: ${q(`${Math.ceil(spec.resources.memoryGiB * 1024)}Mi`)}`] : [];
  const requests = [cpu, ...memory];
  const limits = [...(spec.resources.gpus > 0 ? [`nvidia.com/gpu: ${spec.resources.gpus}`] : []), cpu, ...memory];
  const pvc = spec.kubernetes.pvc;
  const lines = [
    `# atflow sweep "${p.sweep}": ${p.runs} run(s); task i runs point i of the manifest (JOB_COMPLETION_INDEX).`,
    `# Submit with: kubectl apply -f <this file>. The container's working directory (${spec.kubernetes.workdir})`,
    `# must hold the manifest (${p.manifest}), its configs and the runs folder, shared by all tasks.`,
    `# Finished runs are skipped and unfinished ones resume, so a retried task continues where it stopped.`,
    `# The claim "${pvc}" must exist (ReadWriteMany when tasks run on several nodes) and hold that folder.`,
    'apiVersion: batch/v1',
    'kind: Job',
    'metadata:',
    `  name: ${name}`,
    ...(spec.kubernetes.namespace ? [`  namespace: ${q(spec.kubernetes.namespace)}`] : []),
    '  labels:',
    '    app.kubernetes.io/name: atflow',
    `    atflow/sweep: ${q(labelValue(p.sweep))}`,
    'spec:',
    '  completionMode: Indexed',
    `  completions: ${p.runs}`,
    `  parallelism: ${Math.min(spec.parallelism ?? p.runs, p.runs)}`,
    // Per index: a failing point is retried on its own and then given up, while the others go on.
    `  backoffLimitPerIndex: ${spec.kubernetes.retriesPerIndex}`,
    '  template:',
    '    metadata:',
    '      labels:',
    '        app.kubernetes.io/name: atflow',
    `        atflow/sweep: ${q(labelValue(p.sweep))}`,
    '    spec:',
    '      restartPolicy: Never',
    '      containers:',
    '        - name: worker',
    `          image: ${q(spec.kubernetes.image)}`,
    `          workingDir: ${q(spec.kubernetes.workdir)}`,
    `          command: [${command.map(q).join(', ')}]`,
    // the automatic data-parallel count (wasm) follows the task's CPU request, not the node's cores
    '          env:',
    '            - name: ATFLOW_CORES',
    `              value: ${q(String(Math.max(1, Math.floor(spec.resources.cpus ?? 1))))}`,
    '          resources:',
    '            requests:',
    ...requests.map((l) => `              ${l}`),
    '            limits:',
    ...limits.map((l) => `              ${l}`),
    '          volumeMounts:',
    '            - name: work',
    `              mountPath: ${q(spec.kubernetes.workdir)}`,
    '      volumes:',
    '        - name: work',
    '          persistentVolumeClaim:',
    `            claimName: ${q(pvc)}`,
  ];
  return lines.join('\n') + '\n';
}

/** An sbatch script with `--array=0-(n-1)`, each task running the same worker command. */
export function slurmArrayScript(p: ArrayJobParams): string {
  const { spec } = p;
  const throttle = spec.parallelism !== undefined && spec.parallelism < p.runs ? `%${spec.parallelism}` : '';
  const directives: Array<[string, string]> = [
    ['job-name', `atflow-${p.sweep}`],
    ['array', `0-${p.runs - 1}${throttle}`],
    ['chdir', p.slurmChdir],
    ['output', `${p.logsDir}/slurm-%A_%a.log`],
  ];
  if (spec.resources.cpus !== undefined) directives.push(['cpus-per-task', String(spec.resources.cpus)]);
  if (spec.resources.memoryGiB !== undefined) directives.push(['mem', `${Math.ceil(spec.resources.memoryGiB * 1024)}M`]);
  if (spec.resources.gpus > 0) directives.push(['gres', `gpu:${spec.resources.gpus}`]);
  if (spec.slurm.partition) directives.push(['partition', spec.slurm.partition]);
  if (spec.slurm.time) directives.push(['time', spec.slurm.time]);
  for (const [key, value] of directives) {
    // sbatch reads #SBATCH lines itself, without a shell: a value cannot be quoted.
    if (/\s/.test(value)) {
      throw new AtflowError(
        'CONFIG',
        `SLURM --${key}: '${value}' contains whitespace, which #SBATCH lines cannot express; use a path without spaces`,
        { key, value },
      );
    }
  }
  // A batch job starts with the submitter's environment, or a bare one (--export=NONE): name node and the
  // CLI by absolute path, and put node's folder first on PATH for anything the run starts.
  const argv = spec.command ?? [process.execPath, findAtflowBin()];
  const command = [...argv, 'sweep-worker', p.manifest].map(shellQuote).join(' ');
  return (
    [
      '#!/bin/bash',
      `# atflow sweep "${p.sweep}": ${p.runs} run(s); task i runs point i of the manifest (SLURM_ARRAY_TASK_ID).`,
      '# Submit with: sbatch <this file>. Finished runs are skipped and unfinished ones resume on resubmission.',
      ...directives.map(([k, v]) => `#SBATCH --${k}=${v}`),
      'set -euo pipefail',
      `export PATH=${shellQuote(path.dirname(process.execPath))}:"\${PATH:-/usr/local/bin:/usr/bin:/bin}"`,
      `cd ${shellQuote(p.slurmChdir)}`,
      // the automatic data-parallel count (wasm) follows the CPUs this task was given, not the node's cores
      // the process may see; a resubmitted task keeps its checkpoint's count (ATFLOW_WORKERS unset)
      'export ATFLOW_CORES="${ATFLOW_CORES:-${SLURM_CPUS_PER_TASK:-1}}"',
      `exec ${command}`,
    ].join('\n') + '\n'
  );
}

function relativeTo(base: string, file: string): string {
  const rel = path.relative(base, file);
  // Outside the working directory a relative path would depend on the cluster mirroring the parent too.
  return (rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(file) : rel).split(path.sep).join('/');
}

/** RFC 1123 label (Kubernetes object names): lower-case alphanumerics and '-', at most 63 characters. */
export function dnsLabel(s: string): string {
  const label = s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
  return label || 'atflow-sweep';
}

function labelValue(s: string): string {
  return s
    .slice(0, 63)
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** POSIX single-quoting, only where needed so the common case stays readable. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:@%+,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
