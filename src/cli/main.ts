import 'reflect-metadata';
import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';

/**
 * `atflow` entry point. Each sub-command lives in its own file under ./commands and exports
 * `register(program)`; this file only collects them, so adding a command touches nothing else.
 */
export function buildProgram(): Command {
  const program = new Command('atflow')
    .description('Memorization and robust overfitting in adversarial training: runs, sweeps, logs, reports')
    .showHelpAfterError();
  const dir = path.join(__dirname, 'commands');
  const files = fs.readdirSync(dir).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort();
  for (const f of files) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(dir, f));
    if (typeof mod.register === 'function') mod.register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
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

if (require.main === module || process.argv[1]?.endsWith('atflow.js')) {
  main(process.argv).then(
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
