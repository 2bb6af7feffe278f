import type { Command } from 'commander';
import { runConfig } from '../run-config';
import { parseVariantProcesses } from '../../run/data-parallel/worker-counts';
import type { BackendName } from '../../backend/select';

/** `atflow run <config> [--set path=value]... [--out runs/] [--backend ...] [--resume] [--quiet]` */
export function register(program: Command): void {
  program
    .command('run')
    .description('run every variant a config defines, each into <out>/<run_id>/ (finished runs are skipped, saying where and on which backend they were trained; --rerun trains them again)')
    .argument('<config>', 'a JSON run config (see config/)')
    .option('--set <path=value>', 'override a config field, e.g. --set attack.eps=0.1 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--out <dir>', 'parent folder of the run folders', 'runs')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu (default: ATFLOW_BACKEND or auto)')
    .option('--resume', 'continue unfinished runs from their last checkpoint')
    .option('--rerun', 'train runs again from scratch, replacing their folders (finished runs are otherwise skipped)')
    .option('--quiet', 'no progress output')
    .option('--only <variant>', 'run just this variant of the config')
    .option('--plugin <module[#export]>', "register a plugin module's operators first (export default 'register'; repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--sink <name>', 'add a sink registered under this name (a plugin\'s; repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--workers <n>', 'variant processes: run up to n variants of the config at once, each in its own process (default: 1; 0 = one per core)')
    .addHelpText(
      'after',
      `
Two kinds of workers, which multiply:
  --workers <n>       variant processes: how many variants of the config run at once
  ATFLOW_WORKERS=<k>  data-parallel threads inside each run (wasm/cpu; 'auto' = one per core)
--workers 2 with ATFLOW_WORKERS=2 uses 4 threads; atflow warns when the product exceeds the cores.`,
    )
    .action(async (config: string, opts: { set: string[]; out: string; backend?: BackendName | 'auto'; resume?: boolean; rerun?: boolean; quiet?: boolean; only?: string; workers?: string; plugin: string[]; sink: string[] }) => {
      const code = await runConfig(config, {
        sets: opts.set,
        outDir: opts.out,
        backend: opts.backend,
        resume: !!opts.resume,
        rerun: !!opts.rerun,
        quiet: !!opts.quiet,
        only: opts.only,
        processes: parseVariantProcesses(opts.workers),
        plugins: opts.plugin,
        sinkNames: opts.sink,
      });
      process.exitCode = code;
    });
}
