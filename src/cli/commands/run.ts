import type { Command } from 'commander';
import { runConfig } from '../../pipelines/run-config';
import type { BackendName } from '../../backend/select';

/** `atflow run <config> [--set path=value]... [--out runs/] [--backend ...] [--resume] [--quiet]` */
export function register(program: Command): void {
  program
    .command('run')
    .description('run every variant a config defines, each into <out>/<run_id>/ (finished runs are skipped)')
    .argument('<config>', 'a JSON run config (see config/)')
    .option('--set <path=value>', 'override a config field, e.g. --set attack.eps=0.1 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--out <dir>', 'parent folder of the run folders', 'runs')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu (default: ATFLOW_BACKEND or auto)')
    .option('--resume', 'continue unfinished runs from their last checkpoint')
    .option('--quiet', 'no progress output')
    .option('--only <variant>', 'run just this variant of the config')
    .option('--workers <n>', 'run variants in parallel worker processes (default: 1; 0 = one per core)')
    .action(async (config: string, opts: { set: string[]; out: string; backend?: BackendName | 'auto'; resume?: boolean; quiet?: boolean; only?: string; workers?: string }) => {
      const code = await runConfig(config, {
        sets: opts.set,
        outDir: opts.out,
        backend: opts.backend,
        resume: !!opts.resume,
        quiet: !!opts.quiet,
        only: opts.only,
        workers: opts.workers === undefined ? 1 : Number(opts.workers),
      });
      process.exitCode = code;
    });
}
