import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { register } from '../../src/cli/commands/sweep';
import { AtflowError } from '../../src/core/errors';
import { expandSweep } from '../../src/sweep/expand';
import { parseSweepSpec } from '../../src/sweep/sweep-spec';
import { tempDir, writeJson } from './helpers';

/** Only this area's commands, so the test does not depend on the other commands' state. */
async function cli(...args: string[]): Promise<string> {
  const program = new Command('atflow').exitOverride();
  register(program);
  const out: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  });
  try {
    await program.parseAsync(['node', 'atflow', ...args]);
  } finally {
    write.mockRestore();
  }
  return out.join('');
}

afterEach(() => {
  process.exitCode = undefined;
});

describe('atflow sweep (CLI)', () => {
  test('--dry-run writes the configs and the manifest into --out and launches nothing', async () => {
    const dir = tempDir();
    const sweepFile = writeJson(path.join(dir, 'eps.json'), { base: { seed: 1 }, axes: { 'attack.eps': [0.1, 0.2, 0.3] } });
    const printed = await cli('sweep', sweepFile, '--out', path.join(dir, 'runs'), '--dry-run');
    expect(printed).toContain('wrote 3 config(s)');
    const sweepDir = path.join(dir, 'runs', 'sweeps', 'eps');
    expect(fs.readdirSync(path.join(sweepDir, 'configs')).sort()).toEqual(['0000.json', '0001.json', '0002.json']);
    expect(JSON.parse(fs.readFileSync(path.join(sweepDir, 'configs', '0002.json'), 'utf8'))).toEqual({ seed: 1, attack: { eps: 0.3 } });
    expect(fs.existsSync(path.join(sweepDir, 'logs'))).toBe(false);
    expect(process.exitCode ?? 0).toBe(0);
  });

  test('--executor array turns a local sweep into job files', async () => {
    const dir = tempDir();
    const sweepFile = writeJson(path.join(dir, 'eps.json'), { base: { seed: 1 }, axes: { seed: [1, 2] } });
    const printed = await cli('sweep', sweepFile, '--out', path.join(dir, 'runs'), '--executor', 'array');
    expect(printed).toContain('kubectl apply -f');
    expect(printed).toContain('sbatch');
    expect(fs.readFileSync(path.join(dir, 'runs', 'sweeps', 'eps', 'sweep.sbatch'), 'utf8')).toContain('#SBATCH --array=0-1\n');
  });

  test('--submit: sbatch missing or failing is a clear error, after the job files are written', async () => {
    const dir = tempDir();
    const sweepFile = writeJson(path.join(dir, 'eps.json'), { base: { seed: 1 }, axes: { seed: [1, 2] } });
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    const PATH = process.env.PATH;
    try {
      process.env.PATH = bin; // no sbatch here
      await expect(cli('sweep', sweepFile, '--out', path.join(dir, 'runs'), '--submit')).rejects.toThrow(
        /--submit: cannot run sbatch .*sweep\.sbatch: sbatch is not on PATH/,
      );
      expect(fs.existsSync(path.join(dir, 'runs', 'sweeps', 'eps', 'sweep.sbatch'))).toBe(true);
      fs.writeFileSync(
        path.join(bin, 'sbatch'),
        '#!/bin/sh\necho "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2\nexit 1\n',
        { mode: 0o755 },
      );
      process.env.PATH = `${bin}:${PATH}`;
      await expect(cli('sweep', sweepFile, '--out', path.join(dir, 'runs'), '--submit')).rejects.toThrow(
        /sbatch .* failed \(exit 1\): sbatch: error: Batch job submission failed: Invalid partition name/,
      );
    } finally {
      process.env.PATH = PATH;
    }
    await expect(cli('sweep', sweepFile, '--submit', '--executor', 'local')).rejects.toThrow('--submit needs the array executor');
  });

  test('bad flags and bad files are AtflowErrors naming the problem', async () => {
    const dir = tempDir();
    const sweepFile = writeJson(path.join(dir, 'eps.json'), { base: {}, axes: { seed: [1] }, executor: { kind: 'kubernetes' } });
    await expect(cli('sweep', sweepFile, '--dry-run')).rejects.toThrow(/executor\.kind: unknown executor kind "kubernetes"/);
    const good = writeJson(path.join(dir, 'good.json'), { base: {}, axes: { seed: [1] } });
    await expect(cli('sweep', good, '--workers', 'two')).rejects.toThrow("--workers 'two': expected a positive integer");
    await expect(cli('sweep', good, '--workers', '0')).rejects.toThrow(AtflowError);
    await expect(cli('sweep', good, '--executor', 'cloud')).rejects.toThrow("--executor 'cloud': expected one of local, array");
  });

  test('sweep-worker without an index names the variables it looked for', async () => {
    const dir = tempDir();
    const sweepFile = writeJson(path.join(dir, 'eps.json'), { base: {}, axes: { seed: [1, 2] } });
    await cli('sweep', sweepFile, '--out', path.join(dir, 'runs'), '--dry-run');
    const saved = { k: process.env.JOB_COMPLETION_INDEX, s: process.env.SLURM_ARRAY_TASK_ID };
    delete process.env.JOB_COMPLETION_INDEX;
    delete process.env.SLURM_ARRAY_TASK_ID;
    try {
      await expect(cli('sweep-worker', path.join(dir, 'runs', 'sweeps', 'eps', 'manifest.json'))).rejects.toThrow(
        /JOB_COMPLETION_INDEX .*SLURM_ARRAY_TASK_ID/,
      );
      await expect(cli('sweep-worker', path.join(dir, 'runs', 'sweeps', 'eps', 'manifest.json'), '--index', '2')).rejects.toThrow('0..1');
    } finally {
      if (saved.k !== undefined) process.env.JOB_COMPLETION_INDEX = saved.k;
      if (saved.s !== undefined) process.env.SLURM_ARRAY_TASK_ID = saved.s;
    }
  });
});

describe('config/sweeps/random-labels-noise.json', () => {
  test("is a valid sweep of 2 methods × 5 noise rates (checked with an inline base, the real one is the lead's)", () => {
    const file = path.join(__dirname, '..', '..', 'config', 'sweeps', 'random-labels-noise.json');
    const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(raw.base).toBe('../random-labels-cpu.json');
    const spec = parseSweepSpec({ ...raw, base: { labelNoise: { kind: 'symmetric', rate: 0 } } }, file);
    expect(spec.name).toBe('random-labels-noise');
    const points = expandSweep(spec);
    expect(points.map((p) => `${p.values['trainer.name']}@${p.values['labelNoise.rate']}`)).toEqual([
      'pgd-at@0.2',
      'pgd-at@0.4',
      'pgd-at@0.6',
      'pgd-at@0.8',
      'pgd-at@1',
      'trades@0.2',
      'trades@0.4',
      'trades@0.6',
      'trades@0.8',
      'trades@1',
    ]);
    expect(points[7].config).toEqual({ labelNoise: { kind: 'symmetric', rate: 0.6 }, trainer: { name: 'trades' } });
  });
});
