import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runLocal } from '../../src/sweep/local-executor';
import { materialiseSweep } from '../../src/sweep/expand';
import { runSweep } from '../../src/sweep/run-sweep';
import { parseSweepSpec } from '../../src/sweep/sweep-spec';
import { fakeRunDir, fakeRunner, maxOverlap, readTrace, tempDir, writeJson } from './helpers';

/** A 2 × 2 sweep whose runs each take `delayMs` in the fake runner. */
function fourRunSweep(
  dir: string,
  extraBase: Record<string, unknown> = {},
  executor: unknown = { kind: 'local', workers: 2, gpus: 'none' },
) {
  return writeJson(path.join(dir, 'four.json'), {
    base: { seed: 1, delayMs: 800, trainer: { name: 'pgd-at' }, ...extraBase },
    axes: { 'trainer.name': ['pgd-at', 'trades'], seed: [1, 2] },
    executor,
  });
}

describe('local executor', () => {
  test('2 workers run 4 runs, never more than 2 at once, all finish; a re-run skips every finished run', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'runs');
    const lines: string[] = [];
    const result = await runSweep(fourRunSweep(dir), { out, runner: fakeRunner, onStatus: (l) => lines.push(l) });

    expect(result.ok).toBe(true);
    expect(result.kind).toBe('local');
    const trace = readTrace(out);
    expect(trace.filter((e) => e.event === 'start')).toHaveLength(4);
    expect(trace.filter((e) => e.event === 'end')).toHaveLength(4);
    expect(new Set(trace.map((e) => e.config))).toEqual(new Set(['0000.json', '0001.json', '0002.json', '0003.json']));
    expect(maxOverlap(trace)).toBe(2); // parallel, and bounded by the pool
    const runDirs = fs.readdirSync(out).filter((f) => f.startsWith('run-'));
    expect(runDirs).toHaveLength(4);
    for (const d of runDirs) expect(fs.existsSync(path.join(out, d, '_SUCCESS'))).toBe(true);
    // One status line per run, plus the header and the summary.
    expect(lines.filter((l) => /^\[\d\/4\] ok/.test(l))).toHaveLength(4);
    expect(lines.some((l) => l.includes('#2') && l.includes('trainer.name=trades seed=1'))).toBe(true);
    expect(lines[lines.length - 1]).toContain('4 ok, 0 failed');
    // The children's output went to per-run logs.
    expect(fs.readFileSync(path.join(out, 'sweeps', 'four', 'logs', '0003.log'), 'utf8')).toMatch(/training run-/);

    const again = await runSweep(path.join(dir, 'four.json'), { out, runner: fakeRunner, onStatus: () => undefined });
    expect(again.ok).toBe(true);
    const second = readTrace(out).slice(trace.length);
    expect(second.map((e) => e.event)).toEqual(['skip', 'skip', 'skip', 'skip']);
  });

  test('with an isFinished hook, finished points are reported as done without starting a process', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'runs');
    const sweepFile = writeJson(path.join(dir, 'quick.json'), {
      base: { delayMs: 50 },
      axes: { seed: [1, 2, 3] },
      executor: { kind: 'local', workers: 2, gpus: 'none' },
    });
    const isFinished = (config: string, o: string) => fs.existsSync(path.join(fakeRunDir(config, o), '_SUCCESS'));
    await runSweep(sweepFile, { out, runner: fakeRunner, isFinished, onStatus: () => undefined });
    expect(readTrace(out).filter((e) => e.event === 'end')).toHaveLength(3);
    fs.rmSync(path.join(fakeRunDir(path.join(out, 'sweeps', 'quick', 'configs', '0001.json'), out), '_SUCCESS'));

    const lines: string[] = [];
    const before = readTrace(out).length;
    const again = await runSweep(sweepFile, { out, runner: fakeRunner, isFinished, onStatus: (l) => lines.push(l) });
    expect(again.ok).toBe(true);
    expect(
      readTrace(out)
        .slice(before)
        .map((e) => `${e.config}:${e.event}`),
    ).toEqual(['0001.json:resume', '0001.json:end']);
    expect(lines.filter((l) => / done +#[02] /.test(l))).toHaveLength(2);
    expect(lines[lines.length - 1]).toContain('3 ok (2 already done), 0 failed');
  });

  test('a failing run does not stop the others; the next sweep resumes it and skips the rest', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'runs');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'BREAK'), '');
    const sweepFile = writeJson(path.join(dir, 'flaky.json'), {
      base: { delayMs: 300 },
      axes: { knobs: [{ seed: 1 }, { seed: 2, failWhenBreakFile: true }, { seed: 3 }] },
      executor: { kind: 'local', workers: 2, gpus: 'none' },
    });
    const lines: string[] = [];
    const first = await runSweep(sweepFile, { out, runner: fakeRunner, onStatus: (l) => lines.push(l) });
    expect(first.ok).toBe(false);
    if (first.kind !== 'local') throw new Error('expected the local executor');
    expect(first.local.failed.map((f) => [f.index, f.exitCode])).toEqual([[1, 3]]);
    expect(first.local.outcomes.map((o) => o.exitCode)).toEqual([0, 3, 0]);
    const failLine = lines.find((l) => l.includes('FAILED'));
    expect(failLine).toContain('FAILED (exit 3) #1');
    expect(failLine).toContain(path.join('sweeps', 'flaky', 'logs', '0001.log'));
    expect(fs.readFileSync(first.local.failed[0].logFile, 'utf8')).toContain('diverged: loss is NaN');
    expect(lines[lines.length - 1]).toContain('2 ok, 1 failed; failed: 1');

    fs.rmSync(path.join(out, 'BREAK'));
    const startedBefore = readTrace(out).length;
    const second = await runSweep(sweepFile, { out, runner: fakeRunner, onStatus: () => undefined });
    expect(second.ok).toBe(true);
    const events = readTrace(out)
      .slice(startedBefore)
      .map((e) => `${e.config}:${e.event}`)
      .sort();
    expect(events).toEqual(['0000.json:skip', '0001.json:end', '0001.json:resume', '0002.json:skip']);
  });

  test('each worker gets its own GPU through CUDA_VISIBLE_DEVICES; by default one worker per GPU', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'runs');
    const result = await runSweep(fourRunSweep(dir, {}, { kind: 'local' }), {
      out,
      runner: fakeRunner,
      env: { ...process.env, CUDA_VISIBLE_DEVICES: '3,5' },
      onStatus: () => undefined,
    });
    if (result.kind !== 'local') throw new Error('expected the local executor');
    expect(result.local.workers).toBe(2);
    expect(result.local.gpus).toEqual(['3', '5']);
    const trace = readTrace(out).filter((e) => e.event === 'start' || e.event === 'end');
    expect(new Set(trace.map((e) => e.gpu))).toEqual(new Set(['3', '5']));
    // Runs alive at the same time are on different GPUs.
    const starts = trace.filter((e) => e.event === 'start');
    const endOf = (id: string) => trace.find((e) => e.event === 'end' && e.id === id)!.t;
    for (const a of starts) for (const b of starts) if (a !== b && a.t < b.t && b.t < endOf(a.id)) expect(a.gpu).not.toBe(b.gpu);
  });

  test('gpus "none" leaves CUDA_VISIBLE_DEVICES alone; explicit lists are used as given', async () => {
    const dir = tempDir();
    const spec = parseSweepSpec({ base: { delayMs: 10 }, axes: { seed: [1, 2] } }, path.join(dir, 'g.json'));
    const { manifest } = materialiseSweep(spec, path.join(dir, 'a'));
    const env = { ...process.env };
    delete env.CUDA_VISIBLE_DEVICES;
    const r = await runLocal(manifest, { gpus: 'none', runner: fakeRunner, env, onStatus: () => undefined });
    expect(r.workers).toBe(os.availableParallelism()); // no GPUs: one worker per core
    expect(readTrace(manifest.outDir).map((e) => e.gpu)).toEqual([null, null, null, null]);

    const m2 = materialiseSweep(spec, path.join(dir, 'b')).manifest;
    await runLocal(m2, { workers: 1, gpus: ['7'], runner: fakeRunner, env, onStatus: () => undefined });
    expect(readTrace(m2.outDir).map((e) => e.gpu)).toEqual(['7', '7', '7', '7']);
  });

  test('aborting starts nothing new and stops the running child', async () => {
    const dir = tempDir();
    const spec = parseSweepSpec({ base: { delayMs: 5000 }, axes: { seed: [1, 2, 3, 4] } }, path.join(dir, 'a.json'));
    const { manifest } = materialiseSweep(spec, path.join(dir, 'runs'));
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 400);
    const t0 = Date.now();
    const r = await runLocal(manifest, { workers: 1, gpus: 'none', runner: fakeRunner, signal: abort.signal, onStatus: () => undefined });
    expect(Date.now() - t0).toBeLessThan(4500); // it did not wait for the 5 s run
    expect(r.ok).toBe(false);
    expect(r.outcomes).toHaveLength(1);
    expect(r.outcomes[0].signal).toBe('SIGTERM');
    expect(r.notStarted).toEqual([1, 2, 3]);
  });

  test('a runner that cannot be started counts as a failed run', async () => {
    const dir = tempDir();
    const spec = parseSweepSpec({ base: {}, axes: { seed: [1] } }, path.join(dir, 'x.json'));
    const { manifest } = materialiseSweep(spec, path.join(dir, 'runs'));
    const r = await runLocal(manifest, {
      workers: 1,
      gpus: 'none',
      runner: () => ({ command: path.join(dir, 'no-such-binary'), args: [] }),
      onStatus: () => undefined,
    });
    expect(r.failed.map((f) => f.exitCode)).toEqual([127]);
    expect(fs.readFileSync(r.failed[0].logFile, 'utf8')).toContain('cannot start');
  });
});
