import { spawnSync } from 'child_process';
import type { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { availableBackends, BACKEND_NAMES, type BackendInfo, type BackendName, describeBackend } from '../../backend/select';
import { AtflowError } from '../../core/errors';

interface BenchCliOptions {
  json?: boolean;
  backends?: string;
  models?: string;
  measures?: string;
  batch?: string;
  reps?: string;
  warmup?: string;
  quick?: boolean;
  peer?: boolean;
  resnetOnCpu?: boolean;
  peak?: boolean;
  suite?: string;
  autoattack?: string;
}

/** The parts of the benchmark: the engine (in process) and the scripts beside it (each in its own process). */
const SUITES = ['engine', 'sinks', 'logging', 'eval'] as const;
type Suite = (typeof SUITES)[number];
const SUITE_SCRIPTS: Record<Exclude<Suite, 'engine'>, { script: string; quickArgs: string[] }> = {
  sinks: { script: 'sinks.ts', quickArgs: ['--rows', '200000'] },
  logging: { script: 'logging-overhead.ts', quickArgs: ['--reps', '1', '--train', '500', '--epochs', '1'] },
  // AutoAttack per stage and the per-epoch evaluation, beside the reference AutoAttack and PyTorch (bench/eval.ts)
  eval: { script: 'eval.ts', quickArgs: ['--quick'] },
};

const MODEL_KEYS = ['mnist', 'resnet'] as const;

interface BenchRowLike {
  readonly model: string;
  readonly measure: string;
}
/** The part of bench/engine.ts this command uses (typed here so the library build does not compile bench/). */
interface BenchEngine {
  runEngineBench(options: {
    backends: readonly BackendName[];
    models: readonly string[];
    measures: readonly string[];
    batch?: Record<string, number>;
    reps: number;
    warmup: number;
    peer: boolean;
    peak: boolean;
    resnetOnCpu: boolean;
    note: (m: string) => void;
    onRow?: (row: BenchRowLike) => void;
  }): Promise<{ rows: BenchRowLike[]; peers: unknown; backends: BackendInfo[] }>;
  formatTable(rows: readonly BenchRowLike[], peers: unknown): string;
}

function list<T extends string>(field: string, value: string | undefined, allowed: readonly T[], fallback: readonly T[]): T[] {
  if (value === undefined) return [...fallback];
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const it of items) {
    if (!allowed.includes(it as T))
      throw new AtflowError('ARGUMENT', `bench --${field}: unknown '${it}'; expected a comma-separated list of ${allowed.join(', ')}`, {
        field,
        value: it,
      });
  }
  return items as T[];
}

function positiveInt(field: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new AtflowError('ARGUMENT', `bench --${field} must be an integer ≥ ${min}, got '${value}'`, { field, value });
  return n;
}

/**
 * Runs bench/<script> in a child process (tsx, as the CLI runs its sources); its JSON objects become
 * JSON lines tagged {bench: suite} with --json, else are printed as they come. Returns the exit status.
 */
function runScriptSuite(
  benchDir: string,
  suite: Exclude<Suite, 'engine'>,
  quick: boolean,
  json: boolean,
  note: (m: string) => void,
  env: NodeJS.ProcessEnv = process.env,
): number {
  const { script, quickArgs } = SUITE_SCRIPTS[suite];
  note(`${suite}: bench/${script}${quick ? ` ${quickArgs.join(' ')}` : ''} ...`);
  const tsxCli = require.resolve('tsx/cli');
  const r = spawnSync(process.execPath, [tsxCli, path.join(benchDir, script), ...(quick ? quickArgs : [])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
    env,
  });
  if (r.error || r.status !== 0) {
    note(`${suite}: bench/${script} failed (${r.error?.message ?? `exit ${r.status}`})`);
    return r.status ?? 1;
  }
  const out = r.stdout.trim();
  if (!json) {
    process.stdout.write(`${suite}:\n${out}\n`);
    return 0;
  }
  // the scripts print one JSON object (sinks: pretty-printed) or one per line
  let objects: unknown[];
  try {
    objects = [JSON.parse(out)];
  } catch {
    objects = out
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .map((l) => JSON.parse(l));
  }
  for (const o of objects) process.stdout.write(JSON.stringify({ bench: suite, ...(o as object) }) + '\n');
  return 0;
}

/**
 * `atflow bench`: the engine benchmark (bench/engine.ts). JSON lines on stdout with --json (the table
 * then goes to stderr), else the table on stdout. Progress notes always go to stderr.
 */
export function register(program: Command): void {
  program
    .command('bench')
    .description(
      'benchmarks beside PyTorch CPU: the engine (forward, input gradient, ' +
        'train step, PGD-10 AT step on every backend), sinks, logging, ' +
        'evaluation (AutoAttack per stage beside the reference, the per-epoch ' +
        'evaluation)',
    )
    .option(
      '--json',
      'one JSON object per line on stdout: {model, batch, measure, backend, threads, ms, examples_per_s, gflops, peer_ms, ratio}',
    )
    .option('--suite <list>', `parts to run: ${SUITES.join(', ')} or all (default engine; \`npm run bench\` runs all)`)
    .option(
      '--backends <list>',
      `comma-separated subset of ${BACKEND_NAMES.join(', ')} (default: ` +
        `tensorflow and wasm where present; the pure-JS cpu reference takes ` +
        `over 15 minutes, name it to run it)`,
    )
    .option('--models <list>', 'mnist (the MNIST CNN, batch 128), resnet (PreAct-ResNet-18 on 32×32×3, batch 64); default both')
    .option('--measures <list>', 'forward, grad_x, train_step, pgd10_at_step (default all)')
    .option('--batch <n>', 'batch size for every model (default 128 for mnist, 64 for resnet)')
    .option('--reps <n>', 'timed repetitions per measure; the median is reported (default 5, --quick 2)')
    .option('--warmup <n>', 'untimed repetitions first (default 1)')
    .option('--quick', 'fewer repetitions (2, warm-up 1); with no --models, the MNIST CNN only')
    .option('--no-peer', 'do not run the PyTorch peer (peer_ms is then null)')
    .option('--resnet-on-cpu', 'also run PreAct-ResNet-18 on the cpu backend (minutes per measure)')
    .option('--no-peak', 'skip the peak probe (a large matmul per backend and in PyTorch; share_of_peak is then null)')
    .option(
      '--autoattack <dir>',
      'eval suite: a checkout of fra31/auto-attack (the folder holding ' +
        'autoattack/) for the reference AutoAttack (default: ' +
        'ATFLOW_AUTOATTACK)',
    )
    .action(async (opts: BenchCliOptions) => {
      // bench/ lives beside src/ in a clone (it is not in the npm package): TypeScript loaded at run time
      // through tsx, a devDependency, so that `atflow --help` does not pay for its imports and the
      // library build excludes it. (src/ and dist/ are both two levels below the package root.)
      const benchDir = path.join(__dirname, '..', '..', '..', 'bench');
      if (!fs.existsSync(path.join(benchDir, 'engine.ts'))) {
        throw new AtflowError(
          'ARGUMENT',
          `atflow bench runs from a clone of the atflow repository (${benchDir} ` +
            `is not in the npm package): git clone it, npm ci, then npx atflow ` +
            `bench`,
        );
      }

      require('tsx/cjs');

      const engine: BenchEngine = require(path.join(benchDir, 'engine'));

      const { MEASURES }: { MEASURES: readonly string[] } = require(path.join(benchDir, 'flops'));
      const suites: Suite[] = opts.suite === 'all' ? [...SUITES] : list<Suite>('suite', opts.suite, SUITES, ['engine']);
      const note = (m: string) => process.stderr.write(`bench: ${m}\n`);
      const runEngine = async () => {
        const present = availableBackends();
        // cpu (pure JS) only when named: it is the numerical reference, not a training backend
        const fallback = present.filter((b) => b !== 'cpu');
        const backends = list<BackendName>('backends', opts.backends, BACKEND_NAMES, fallback.length > 0 ? fallback : ['cpu']);
        for (const b of backends) {
          if (!present.includes(b))
            throw new AtflowError(
              'BACKEND',
              `bench --backends: '${b}' is not available here (available: ${present.join(', ')}); see \`atflow backend\``,
            );
        }
        const models = list('models', opts.models, MODEL_KEYS, opts.quick ? ['mnist'] : MODEL_KEYS);
        const measures = list('measures', opts.measures, MEASURES, MEASURES);
        const batchAll = opts.batch === undefined ? undefined : positiveInt('batch', opts.batch, 1);
        const reps = positiveInt('reps', opts.reps, opts.quick ? 2 : 5);
        const warmup = positiveInt('warmup', opts.warmup, 1, 0);
        const {
          rows,
          peers,
          backends: infos,
        } = await engine.runEngineBench({
          backends,
          models,
          measures,
          batch: batchAll === undefined ? undefined : { mnist: batchAll, resnet: batchAll },
          reps,
          warmup,
          peer: opts.peer !== false,
          peak: opts.peak !== false,
          resnetOnCpu: Boolean(opts.resnetOnCpu),
          note,
          onRow: opts.json ? (r) => process.stdout.write(JSON.stringify(r) + '\n') : undefined,
        });
        const header = infos.map((i) => `  ${describeBackend(i)}`).join('\n');
        const table = `backends:\n${header}\n${engine.formatTable(rows, peers)}\n`;
        (opts.json ? process.stderr : process.stdout).write(table);
      };
      if (suites.includes('engine')) await runEngine();
      let failed = 0;
      for (const suite of suites) {
        const env = opts.autoattack ? { ...process.env, ATFLOW_AUTOATTACK: path.resolve(opts.autoattack) } : process.env;
        if (suite !== 'engine') failed += runScriptSuite(benchDir, suite, Boolean(opts.quick), Boolean(opts.json), note, env) === 0 ? 0 : 1;
      }
      if (failed > 0) process.exitCode = 1;
    });
}
