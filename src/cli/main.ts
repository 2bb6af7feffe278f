import 'reflect-metadata';
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';

/**
 * `atflow` entry point. Each sub-command lives in its own file under ./commands and exports
 * `register(program)`; this file only collects them, so adding a command touches nothing else.
 * bin/atflow.js calls runCli(); importing this module runs nothing.
 */
export function buildProgram(): Command {
  const program = new Command('atflow')
    .description('Memorization and robust overfitting in adversarial training: runs, sweeps, logs, reports')
    .version(ownVersion(), '-V, --version', 'print the atflow version')
    .option('--verbose', "keep TensorFlow's native INFO log lines (hidden by default: TF_CPP_MIN_LOG_LEVEL=2)")
    .showHelpAfterError();
  const dir = path.join(__dirname, 'commands');
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'))
    .sort();
  for (const f of files) {
    const mod = require(path.join(dir, f));
    if (typeof mod.register === 'function') mod.register(program);
  }
  return program;
}

/** package.json sits two levels above both src/cli/ and dist/cli/. */
function ownVersion(): string {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
}

/**
 * TensorFlow's C++ library prints INFO lines (oneDNN, cpu_feature_guard) on every start. It reads
 * TF_CPP_MIN_LOG_LEVEL when it loads, so the choice is made before any command can load tfjs-node:
 * a value the user set wins, else --verbose shows everything (0), else warnings and errors only (2).
 */
export function chooseTensorflowLogLevel(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  if (env.TF_CPP_MIN_LOG_LEVEL !== undefined) return;
  const args = argv.slice(2);
  const end = args.indexOf('--');
  env.TF_CPP_MIN_LOG_LEVEL = (end < 0 ? args : args.slice(0, end)).includes('--verbose') ? '0' : '2';
}

export async function main(argv: string[]): Promise<void> {
  chooseTensorflowLogLevel(argv);
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof AtflowError) {
      process.stderr.write(`atflow: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
}

/**
 * Runs the CLI and ends the process with its exit code: 0 only when the command succeeded, 2 for an
 * AtflowError (bad config, missing file...), 1 for anything unexpected (with its stack), and the code
 * a command set (a failed run, 130 when interrupted).
 */
export function runCli(argv: string[] = process.argv): void {
  main(argv).then(
    () => {
      // tfjs / wasm keep handles open; a finished command should still end the process.
      if (!process.env.ATFLOW_NO_EXIT) process.exit(process.exitCode ?? 0);
    },
    (e) => {
      process.stderr.write(`${e?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
