import type { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { runConfig } from '../run-config';
import { parseVariantProcesses } from '../../run/data-parallel/worker-counts';
import type { BackendName } from '../../backend/select';
import { AtflowError } from '../../core/errors';
import { loadRunsWithPlugins, specWarnings, type ResolvedRun } from '../../config/spec';
import { defaultRegistry } from '../../run/default-registry';
import { RunFolder } from '../../store/run-folder';
import { CheckpointStore } from '../../store/checkpoint-store';

interface DryRunOptions {
  readonly sets: readonly string[];
  readonly plugins: readonly string[];
  readonly outDir: string;
  readonly resume: boolean;
  readonly only?: string;
}

/** What `atflow run` would do with one run: start it, skip it, resume it, or refuse its folder. */
function plannedAction(run: ResolvedRun, runDir: string, resume: boolean): string {
  const folder = new RunFolder(runDir);
  const state = folder.state();
  if (state === 'absent') return 'would start';
  if (state === 'finished') return 'finished: would be skipped';
  let epoch: number | null = null;
  try {
    epoch = new CheckpointStore(folder).latestEpoch();
  } catch {
    /* a damaged checkpoint is the run's business, when it starts */
  }
  const from = epoch === null ? 'from the start (no checkpoint yet)' : `from its checkpoint of epoch ${epoch} of ${run.spec.epochs}`;
  return resume ? `unfinished: would resume ${from}` : `unfinished: would be refused without --resume (it would resume ${from})`;
}

/**
 * `atflow run --dry-run`: the config checked through and through (plugins loaded, every part's name and
 * options checked), then each resolved run printed, its id, its folder and what a real run would do with
 * it, and its spec as the run would store it. Nothing is written.
 */
export function dryRun(configFile: string, o: DryRunOptions, out: (line: string) => void = (l) => process.stdout.write(l + '\n')): void {
  const registry = defaultRegistry();
  let runs = loadRunsWithPlugins(configFile, registry, { sets: o.sets, plugins: o.plugins, log: (l) => process.stderr.write(l + '\n') });
  if (o.only) {
    runs = runs.filter((r) => r.variant === o.only);
    if (runs.length === 0) throw new AtflowError('CONFIG', `--only ${o.only}: ${configFile} has no such variant`);
  }
  for (const run of runs) {
    const runDir = path.join(o.outDir, run.runId);
    out(`${run.variant ?? '(no variant)'}  ${run.runId}  ${runDir}  ${plannedAction(run, runDir, o.resume)}`);
    for (const w of specWarnings(run.spec)) out(`  warning: ${w}`);
    out(JSON.stringify(run.spec, null, 2).replace(/^/gm, '  '));
  }
  out(`${runs.length} run(s); nothing was written (--dry-run)${fs.existsSync(o.outDir) ? '' : `; ${o.outDir} does not exist yet`}`);
}

/** `atflow run <config> [--set path=value]... [--out runs/] [--backend ...] [--resume] [--quiet]` */
export function register(program: Command): void {
  program
    .command('run')
    .description(
      'run every variant a config defines, each into <out>/<run_id>/ ' +
        '(finished runs are skipped, saying where and on which backend they ' +
        'were trained; --rerun trains them again)',
    )
    .argument('<config>', 'a JSON run config (see config/)')
    .option(
      '--set <path=value>',
      'override a config field, the last word (after variants), e.g. --set attack.eps=8/255 (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--dry-run',
      'print the resolved runs (ids, folders, what would be started, skipped or resumed, and their specs) and write nothing',
    )
    .option('--out <dir>', 'parent folder of the run folders', 'runs')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu (default: ATFLOW_BACKEND or auto)')
    .option('--resume', 'continue unfinished runs from their last checkpoint')
    .option('--rerun', 'train runs again from scratch, replacing their folders (finished runs are otherwise skipped)')
    .option('--quiet', 'no progress output')
    .option('--only <variant>', 'run just this variant of the config')
    .option(
      '--plugin <module[#export]>',
      "register a plugin module's operators first (export default 'register'; repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--sink <name>',
      "add a sink registered under this name (a plugin's; repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--workers <n>',
      'variant processes: run up to n variants of the config at once, each in its own process (default: 1; 0 = one per core)',
    )
    .addHelpText(
      'after',
      `
Two kinds of workers, which multiply:
  --workers <n>       variant processes: how many variants of the config run at once
  ATFLOW_WORKERS=<k>  data-parallel threads inside each run (wasm/cpu; 'auto' = one per core)
--workers 2 with ATFLOW_WORKERS=2 uses 4 threads; atflow warns when the product exceeds the cores.`,
    )
    .action(
      async (
        config: string,
        opts: {
          set: string[];
          out: string;
          backend?: BackendName | 'auto';
          resume?: boolean;
          rerun?: boolean;
          quiet?: boolean;
          only?: string;
          workers?: string;
          plugin: string[];
          sink: string[];
          dryRun?: boolean;
        },
      ) => {
        if (opts.dryRun)
          return dryRun(config, { sets: opts.set, plugins: opts.plugin, outDir: opts.out, resume: !!opts.resume, only: opts.only });
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
      },
    );
}
