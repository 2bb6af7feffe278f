import * as fs from 'fs';
import * as path from 'path';
import { runConfig } from '../../src/cli/run-config';

/**
 * Real (not synthetic) runs of the shipped configs, shrunk so a test can afford them: real MNIST
 * digits, the real trainers, the Parquet sink and the report the CLI writes, in seconds on wasm.
 */
export const REPO = path.join(__dirname, '..', '..');

/** Overrides that keep a shipped config's setup but make it take seconds. */
export function tinyOverrides(o: { epochs?: number; trainSize?: number } = {}): Record<string, unknown> {
  const epochs = o.epochs ?? 6;
  return {
    epochs,
    data: { trainSize: o.trainSize ?? 128, testSize: 100, batchSize: 16, testBatchSize: 100 },
    attack: { steps: 3 },
    eval: { every: 2 },
    schedule: { name: 'multistep', milestones: [epochs - 1], gamma: 0.1 },
    checkpoint: { every: epochs },
  };
}

/** Writes `<dir>/<name>.json` extending a shipped config with overrides; returns its path. */
export function tinyConfig(dir: string, name: string, shipped: string, overrides: Record<string, unknown>): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ extends: path.join(REPO, 'config', shipped), name, ...overrides }, null, 2));
  return file;
}

/** Runs a config in this process on wasm (as `atflow run` does, report included); returns the run folders. */
export async function runTiny(configFile: string, outDir: string, only?: string): Promise<string[]> {
  const code = await runConfig(configFile, { outDir, backend: 'wasm', quiet: true, log: () => undefined, ...(only ? { only } : {}) });
  if (code !== 0) throw new Error(`runConfig(${configFile}) exited ${code}`);
  return fs
    .readdirSync(outDir)
    .map((d) => path.join(outDir, d))
    .filter((d) => fs.existsSync(path.join(d, 'epochs.parquet')))
    .sort();
}

/** AutoAttack's budget cut down to seconds (the attacks are checked against the reference elsewhere). */
export const TINY_AA_BUDGET = [
  '--apgd-steps',
  '4',
  '--targets',
  '2',
  '--fab-steps',
  '3',
  '--square-queries',
  '10',
  '--batch-size',
  '32',
  '--quiet',
];

/** `atflow eval <runDir> …` in this process on wasm with the cut-down budget: writes eval/<name>/robustness.parquet. */
export async function evalTiny(runDir: string, args: readonly string[]): Promise<void> {
  const { buildProgram } = await import('../../src/cli/main');
  await buildProgram()
    .exitOverride()
    .parseAsync(['node', 'atflow', 'eval', runDir, '--backend', 'wasm', ...TINY_AA_BUDGET, ...args]);
}
