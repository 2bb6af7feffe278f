import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readManifest } from '../../src/sweep/manifest';
import { findAtflowBin } from '../../src/sweep/runner';
import { readTaskStatus } from '../../src/sweep/task-status';
import { loadRuns } from '../../src/config/spec';
import { exampleEpochName } from '../../src/store/run-folder';
import { duck, lit } from '../logs/duck';
import { activeTasks, completions, slurm, type SlurmCluster, slurmUnavailable, startSlurm, waitForJob } from './slurm';

/**
 * Sweeps on a real (single-node) SLURM cluster: `atflow sweep --executor array` writes sweep.sbatch, sbatch
 * submits it as an array job, every task runs the installed CLI's `sweep-worker`. Covers a whole sweep with
 * two tasks writing into one runs/ tree at once, `scancel` of one task then resubmission (finished points
 * skipped, the cancelled one resumed, the examples table equal to an uninterrupted sweep's), and a point
 * that fails (sacct state + error message per task) while the others finish.
 */
const unavailable = slurmUnavailable();
if (unavailable) {
  console.warn(`SLURM sweep tests skipped: ${unavailable}`);
}
const describeSlurm = unavailable ? describe.skip : describe;

const BIN = findAtflowBin();
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-slurm-'));

/** Four tiny points: the 784-256-256-10 MLP on 100 embedded MNIST digits, PGD-2, one checkpoint per epoch. */
const base = {
  name: 'tiny',
  epochs: 4,
  data: { source: 'mnist', trainSize: 100, testSize: 50, batchSize: 50, testBatchSize: 50, augment: 'none' },
  labelNoise: { kind: 'symmetric', rate: 0.4 },
  model: { name: 'mlp' },
  trainer: { name: 'pgd-at' },
  attack: { norm: 'linf', eps: 0.1, alpha: 0.05, steps: 2 },
  optimizer: { lr: 0.05, momentum: 0.9 },
  schedule: { name: 'constant' },
  eval: { every: 1 },
  checkpoint: { every: 1 },
};

function writeJson(file: string, value: unknown): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

/** Environment of the CLI calls: the cluster's (SLURM_CONF, for --submit) and the wasm backend. */
let cliEnv: NodeJS.ProcessEnv = { ...process.env, ATFLOW_BACKEND: 'wasm' };

/** The CLI as installed (node + bin/atflow.js), in `cwd`; returns stdout, throws with stderr on failure. */
function atflow(cwd: string, args: string[], expectStatus = 0): string {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: cliEnv, timeout: 300_000 });
  if (r.status !== expectStatus) throw new Error(`atflow ${args.join(' ')}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * sbatch with a bare environment (only ATFLOW_BACKEND): the script must not depend on the submitter's PATH
 * or working directory. Returns the array job id.
 */
function submit(cluster: SlurmCluster, script: string): string {
  return slurm(cluster, 'sbatch', ['--parsable', '--export=ATFLOW_BACKEND=wasm', script]).trim().split(';')[0];
}

const runDirOf = (configPath: string, outDir: string) => path.join(outDir, loadRuns(configPath)[0].runId);

/** Every file under `dir` (relative paths), for spotting leftovers of non-atomic writes. */
function walk(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

/** One table of every run under `outDir`, without wall-clock columns (they differ between runs by nature). */
async function table(outDir: string, name: 'examples' | 'epochs' | 'steps'): Promise<Record<string, unknown>[]> {
  const files = name === 'examples' ? path.join(outDir, '*', 'examples', '*', '*.parquet') : path.join(outDir, '*', `${name}.parquet`);
  const order = { examples: 'run_id, epoch, phase, split, example', epochs: 'run_id, epoch', steps: 'run_id, epoch, step' }[name];
  const rows = await duck(`SELECT * FROM read_parquet(${lit(files)}, hive_partitioning = false) ORDER BY ${order}`);
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !['time', 'ms', 'wall_ms', 'eval_ms'].includes(k))));
}

describeSlurm('sweeps as SLURM array jobs on a real cluster', () => {
  jest.setTimeout(600_000);
  let cluster: SlurmCluster;
  beforeAll(() => {
    cluster = startSlurm();
    cliEnv = { ...cluster.env, ATFLOW_BACKEND: 'wasm' };
  }, 600_000);
  afterAll(() => {
    cluster?.stop();
  });

  test('submit, scancel one task mid-run, resubmit: finished points skipped, the cancelled one resumes, examples equal an uninterrupted sweep', async () => {
    const work = tmp();
    writeJson(path.join(work, 'tiny.json'), base);
    const sweepFile = writeJson(path.join(work, 'seeds.json'), {
      base: 'tiny.json',
      axes: { seed: [1, 2, 3, 4] },
      executor: { kind: 'array', resources: { cpus: 1 } },
      out: 'runs',
    });
    const printed = atflow(work, ['sweep', sweepFile, '--executor', 'array']);
    const sweepDir = path.join(work, 'runs', 'sweeps', 'seeds');
    const script = path.join(sweepDir, 'sweep.sbatch');
    expect(printed).toContain(`sbatch ${script}`);
    const manifest = readManifest(path.join(sweepDir, 'manifest.json'));
    const manifestBytes = fs.readFileSync(manifest.file);
    const outDir = manifest.outDir;
    const runDirs = manifest.runs.map((r) => runDirOf(r.configPath, outDir));

    // First submission; point 3 is cancelled once it has checkpointed an epoch and before it finishes.
    const first = submit(cluster, script);
    const victim = 3;
    const latest = path.join(runDirs[victim], 'checkpoints', 'LATEST');
    const deadline = Date.now() + 240_000;
    while (!fs.existsSync(latest)) {
      if (Date.now() > deadline) throw new Error(`point ${victim} never checkpointed; tasks: ${activeTasks(cluster, first).join(', ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    slurm(cluster, 'scancel', [`${first}_${victim}`]);
    await waitForJob(cluster, first);
    // The checkpoint it will resume from, and the example partitions written up to it (kept by a resume).
    const resumeEpoch = Number(/(\d+)\s*$/.exec(fs.readFileSync(latest, 'utf8'))![1]);
    expect(resumeEpoch).toBeGreaterThanOrEqual(1);
    expect(resumeEpoch).toBeLessThan(base.epochs);
    const kept = (epoch: number) => path.join(runDirs[victim], 'examples', exampleEpochName(epoch), 'part-train.parquet');
    const keptAt = Array.from({ length: resumeEpoch }, (_, e) => fs.statSync(kept(e + 1)).mtimeMs);

    expect(runDirs.map((d) => fs.existsSync(path.join(d, '_SUCCESS')))).toEqual([true, true, true, false]);
    const statuses = manifest.runs.map((r) => readTaskStatus(sweepDir, r.index)!);
    expect(statuses.map((s) => s.state)).toEqual(['completed', 'completed', 'completed', 'cancelled']);
    expect(statuses.map((s) => s.scheduler)).toEqual(
      [0, 1, 2, 3].map((i) => ({ kind: 'slurm', jobId: expect.any(String), arrayJobId: first, arrayTaskId: String(i) })),
    );
    const sacct = completions(cluster);
    const stateOf = (s: (typeof statuses)[number]) => (s.scheduler.kind === 'slurm' ? sacct.get(s.scheduler.jobId)?.state : undefined);
    expect(statuses.map(stateOf)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'CANCELLED']);

    // Two tasks ran at once (2 CPUs, 1 per task) in the same runs/ tree: intervals overlap...
    const spans = statuses.slice(0, 3).map((s) => [Date.parse(s.startedAt), Date.parse(s.endedAt!)]);
    expect(spans.some(([a0, a1], i) => spans.some(([b0, b1], j) => i !== j && a0 < b1 && b0 < a1))).toBe(true);
    // ...yet the manifest is untouched, no temporary file is left behind by a task that finished (the killed
    // one may leave its in-flight `.*.tmp`, never a half-written file under its final name), and each
    // folder holds its own run.
    expect(fs.readFileSync(manifest.file).equals(manifestBytes)).toBe(true);
    const victimRel = path.relative(work, runDirs[victim]) + path.sep;
    expect(walk(work).filter((f) => /\.tmp$/.test(f) && !f.startsWith(victimRel))).toEqual([]);
    for (const [i, dir] of runDirs.entries()) {
      if (i === victim) continue;
      const ids = await duck(
        `SELECT DISTINCT run_id FROM read_parquet(${lit(path.join(dir, 'examples', '*', '*.parquet'))}, hive_partitioning = false)`,
      );
      expect(ids).toEqual([{ run_id: path.basename(dir) }]);
    }
    const doneAt = runDirs.slice(0, 3).map((d) => fs.statSync(path.join(d, '_SUCCESS')).mtimeMs);

    // Resubmission of the same sweep (this time by `atflow sweep --submit`): the three finished points are
    // skipped, point 3 resumes.
    const submitted = atflow(work, ['sweep', sweepFile, '--submit']);
    const second = /submitted array job (\d+) \(4 task\(s\)\)/.exec(submitted)?.[1];
    if (!second) throw new Error(`no job id in: ${submitted}`);
    await waitForJob(cluster, second);
    expect(runDirs.every((d) => fs.existsSync(path.join(d, '_SUCCESS')))).toBe(true);
    const again = manifest.runs.map((r) => readTaskStatus(sweepDir, r.index)!);
    expect(again.map((s) => [s.state, s.attempt, s.skipped ?? false])).toEqual([
      ['completed', 2, true],
      ['completed', 2, true],
      ['completed', 2, true],
      ['completed', 2, false],
    ]);
    expect(runDirs.slice(0, 3).map((d) => fs.statSync(path.join(d, '_SUCCESS')).mtimeMs)).toEqual(doneAt);
    // Resumed, not restarted: the epochs before its checkpoint were not trained again.
    expect(Array.from({ length: resumeEpoch }, (_, e) => fs.statSync(kept(e + 1)).mtimeMs)).toEqual(keptAt);
    expect(fs.readFileSync(path.join(sweepDir, 'logs', `slurm-${second}_${victim}.log`), 'utf8')).toContain(`run #${victim} ok`);
    const sacct2 = completions(cluster);
    expect(again.map((s) => (s.scheduler.kind === 'slurm' ? sacct2.get(s.scheduler.jobId)?.state : undefined))).toEqual([
      'COMPLETED',
      'COMPLETED',
      'COMPLETED',
      'COMPLETED',
    ]);
    expect(atflow(work, ['sweep-status', sweepDir])).toContain('4 point(s): 4 completed, 0 running, 0 failed, 0 cancelled, 0 pending');

    // The report reads every run of the sweep.
    const report = path.join(work, 'report.html');
    atflow(work, ['report', ...runDirs, '-o', report]);
    const html = fs.readFileSync(report, 'utf8');
    for (const d of runDirs) expect(html).toContain(path.basename(d));

    // The same sweep without interruption (local executor, same configs hence the same run ids): DuckDB
    // reads the same examples table over the whole runs tree, nothing lost, nothing duplicated.
    atflow(work, ['sweep', sweepFile, '--executor', 'local', '--workers', '2', '--out', 'reference', '--backend', 'wasm']);
    const resumed = await table(outDir, 'examples');
    // per point and epoch: the training rows (train and eval phase) and the test split's eval rows
    expect(resumed.length).toBe(4 * base.epochs * (2 * base.data.trainSize + base.data.testSize));
    expect(resumed).toEqual(await table(path.join(work, 'reference'), 'examples'));
    // The per-epoch and per-step logs too.
    expect(await table(outDir, 'epochs')).toEqual(await table(path.join(work, 'reference'), 'epochs'));
    expect(await table(outDir, 'steps')).toEqual(await table(path.join(work, 'reference'), 'steps'));
  });

  test('a point with a bad data path fails on its own: sacct FAILED, its error in the sweep status; the others finish', async () => {
    const work = tmp();
    writeJson(path.join(work, 'tiny.json'), { ...base, epochs: 1 });
    const missing = path.join(work, 'no-such-dataset');
    const good = base.data;
    const sweepFile = writeJson(path.join(work, 'data.json'), {
      base: 'tiny.json',
      axes: { data: [good, { ...good, source: 'idx', options: { dir: missing } }, { ...good, trainSize: 60 }] },
      executor: { kind: 'array', resources: { cpus: 1 } },
    });
    atflow(work, ['sweep', sweepFile, '--executor', 'array']);
    const sweepDir = path.join(work, 'runs', 'sweeps', 'data');
    const job = submit(cluster, path.join(sweepDir, 'sweep.sbatch'));
    await waitForJob(cluster, job);

    const manifest = readManifest(path.join(sweepDir, 'manifest.json'));
    const statuses = manifest.runs.map((r) => readTaskStatus(sweepDir, r.index)!);
    expect(statuses.map((s) => s.state)).toEqual(['completed', 'failed', 'completed']);
    expect(statuses[1].exitCode).not.toBe(0);
    expect(statuses[1].error).toContain(missing);
    const sacct = completions(cluster);
    expect(statuses.map((s) => (s.scheduler.kind === 'slurm' ? sacct.get(s.scheduler.jobId)?.state : undefined))).toEqual([
      'COMPLETED',
      'FAILED',
      'COMPLETED',
    ]);
    for (const i of [0, 2]) expect(fs.existsSync(path.join(runDirOf(manifest.runs[i].configPath, manifest.outDir), '_SUCCESS'))).toBe(true);

    const printed = atflow(work, ['sweep-status', sweepDir], 1);
    expect(printed).toMatch(/#0001 failed .*slurm job \d+ \(array \d+_1\)/);
    expect(printed).toContain(`error: `);
    expect(printed).toContain(missing);
    expect(printed).toContain('3 point(s): 2 completed, 0 running, 1 failed, 0 cancelled, 0 pending');
  });
});
