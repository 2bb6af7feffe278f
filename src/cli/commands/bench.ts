import type { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { availableBackends, BACKEND_NAMES, BackendInfo, BackendName, describeBackend } from '../../backend/select';
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
}

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
    resnetOnCpu: boolean;
    note: (m: string) => void;
    onRow?: (row: BenchRowLike) => void;
  }): Promise<{ rows: BenchRowLike[]; peers: unknown; backends: BackendInfo[] }>;
  formatTable(rows: readonly BenchRowLike[], peers: unknown): string;
}

function list<T extends string>(field: string, value: string | undefined, allowed: readonly T[], fallback: readonly T[]): T[] {
  if (value === undefined) return [...fallback];
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const it of items) {
    if (!allowed.includes(it as T)) throw new AtflowError('ARGUMENT', `bench --${field}: unknown '${it}'; expected a comma-separated list of ${allowed.join(', ')}`, { field, value: it });
  }
  return items as T[];
}

function positiveInt(field: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new AtflowError('ARGUMENT', `bench --${field} must be an integer ≥ ${min}, got '${value}'`, { field, value });
  return n;
}

/**
 * `atflow bench`: the engine benchmark (bench/engine.ts). JSON lines on stdout with --json (the table
 * then goes to stderr), else the table on stdout. Progress notes always go to stderr.
 */
export function register(program: Command): void {
  program
    .command('bench')
    .description('engine benchmark: forward, input gradient, train step and PGD-10 AT step on every backend, beside PyTorch CPU')
    .option('--json', 'one JSON object per line on stdout: {model, batch, measure, backend, threads, ms, examples_per_s, gflops, peer_ms, ratio}')
    .option('--backends <list>', `comma-separated subset of ${BACKEND_NAMES.join(', ')} (default: every backend present)`)
    .option('--models <list>', 'mnist (the MNIST CNN, batch 128), resnet (PreAct-ResNet-18 on 32×32×3, batch 64); default both')
    .option('--measures <list>', 'forward, grad_x, train_step, pgd10_at_step (default all)')
    .option('--batch <n>', 'batch size for every model (default 128 for mnist, 64 for resnet)')
    .option('--reps <n>', 'timed repetitions per measure; the median is reported (default 5, --quick 2)')
    .option('--warmup <n>', 'untimed repetitions first (default 1)')
    .option('--quick', 'fewer repetitions (2, warm-up 1); with no --models, the MNIST CNN only')
    .option('--no-peer', 'do not run the PyTorch peer (peer_ms is then null)')
    .option('--resnet-on-cpu', 'also run PreAct-ResNet-18 on the cpu backend (minutes per measure)')
    .action(async (opts: BenchCliOptions) => {
      // bench/ lives beside src/ in a clone (it is not in the npm package): TypeScript loaded at run time
      // through tsx, a devDependency, so that `atflow --help` does not pay for its imports and the
      // library build excludes it. (src/ and dist/ are both two levels below the package root.)
      const benchDir = path.join(__dirname, '..', '..', '..', 'bench');
      if (!fs.existsSync(path.join(benchDir, 'engine.ts'))) {
        throw new AtflowError('ARGUMENT', `atflow bench runs from a clone of the atflow repository (${benchDir} is not in the npm package): git clone it, npm ci, then npx atflow bench`);
      }
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('tsx/cjs');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const engine: BenchEngine = require(path.join(benchDir, 'engine'));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { MEASURES }: { MEASURES: readonly string[] } = require(path.join(benchDir, 'flops'));
      const present = availableBackends();
      const backends = list<BackendName>('backends', opts.backends, BACKEND_NAMES, BACKEND_NAMES.filter((b) => present.includes(b)));
      for (const b of backends) {
        if (!present.includes(b)) throw new AtflowError('BACKEND', `bench --backends: '${b}' is not available here (available: ${present.join(', ')}); see \`atflow backend\``);
      }
      const models = list('models', opts.models, MODEL_KEYS, opts.quick ? ['mnist'] : MODEL_KEYS);
      const measures = list('measures', opts.measures, MEASURES, MEASURES);
      const batchAll = opts.batch === undefined ? undefined : positiveInt('batch', opts.batch, 1);
      const reps = positiveInt('reps', opts.reps, opts.quick ? 2 : 5);
      const warmup = positiveInt('warmup', opts.warmup, 1, 0);
      const note = (m: string) => process.stderr.write(`bench: ${m}\n`);
      const { rows, peers, backends: infos } = await engine.runEngineBench({
        backends,
        models,
        measures,
        batch: batchAll === undefined ? undefined : { mnist: batchAll, resnet: batchAll },
        reps,
        warmup,
        peer: opts.peer !== false,
        resnetOnCpu: Boolean(opts.resnetOnCpu),
        note,
        onRow: opts.json ? (r) => process.stdout.write(JSON.stringify(r) + '\n') : undefined,
      });
      const header = infos.map((i) => `  ${describeBackend(i)}`).join('\n');
      const table = `backends:\n${header}\n${engine.formatTable(rows, peers)}\n`;
      (opts.json ? process.stderr : process.stdout).write(table);
    });
}
