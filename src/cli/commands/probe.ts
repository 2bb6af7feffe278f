import * as tf from '@tensorflow/tfjs';
import type { Command } from 'commander';
import * as path from 'path';
import { AtflowError } from '../../core/errors';
import { deriveSeed, Rng } from '../../core/rng';
import { initBackend, type BackendName } from '../../backend/select';
import {
  DEFAULT_ALPHAS,
  gradientProbe,
  trainerObjective,
  type GradientProbeRow,
  type ProbeAdversarial,
} from '../../analysis/gradient-probe';
import { writeGradientProbe } from '../../report/gradient-probe-files';
import { loadWeights } from '../../models/checkpoint';
import { buildRun } from '../../config/build-run';
import { registryForRun } from '../../run/default-registry';
import { validateSpec } from '../../config/spec';
import { CHECKPOINT_FILES, RunFolder } from '../../store/run-folder';
import { CheckpointStore } from '../../store/checkpoint-store';

export interface ProbeGradientOptions {
  /** 0: the initialisation buildRun draws from the run's seed (the weights the run started from). */
  readonly epoch: number;
  /** Plugin modules the run's model / trainer came from (--plugin). */
  readonly plugins?: readonly string[];
  readonly batchSize?: number;
  readonly alphas?: readonly number[];
  /** Default: the run's seed. */
  readonly seed?: number;
  readonly backend?: BackendName | 'auto';
  /** 'recomputed' (default) or 'fixed': the attack at θ reused for every θ + α·d. */
  readonly adversarial?: ProbeAdversarial;
}

/**
 * The gradient-instability probe on a run folder: rebuilds the run's model, trainer and data from
 * spec.json (the spec as the pipeline stored it), loads checkpoints/epoch-NNNN/model.safetensors,
 * takes a fixed seeded batch of training examples with the labels trained on, and measures Δ(α).
 */
export async function probeGradient(
  runDir: string,
  o: ProbeGradientOptions,
): Promise<{ rows: GradientProbeRow[]; parquet: string; svg: string }> {
  const folder = new RunFolder(runDir);
  folder.checkShape();
  const doc = folder.readSpec();
  const spec = validateSpec(folder.readConfig(), folder.specFile);
  const store = new CheckpointStore(folder);
  const ckpt = path.join(store.checkpointDir(o.epoch), CHECKPOINT_FILES.model);
  if (o.epoch !== 0 && !store.keptEpochs().includes(o.epoch)) {
    const have = store.keptEpochs();
    const why =
      spec.checkpoint.keep === 'all'
        ? ''
        : '; the run kept only its newest checkpoint (checkpoint.keep: "last"): train with checkpoint.keep: "all" to keep every epoch\'s';
    throw new AtflowError(
      'RESUME',
      `no checkpoint for epoch ${o.epoch} in ${runDir} (checkpoints kept: ${have.length ? have.join(', ') : 'none'}${why})`,
      { path: ckpt },
    );
  }
  await initBackend(o.backend);
  // the plugins the run recorded in spec.json, and any --plugin
  const parts = buildRun(spec, registryForRun(folder.specFile, doc.spec ?? {}, spec, o.plugins));
  // epoch 0: no checkpoint, the model as built from spec.seed is the run's initialisation
  if (o.epoch !== 0) loadWeights(parts.model, ckpt);
  const seed = o.seed ?? spec.seed;
  const n = parts.planner.size('train');
  const take = Math.min(n, o.batchSize ?? 128);
  const indices = new Rng(deriveSeed(seed, 'gradient-probe-batch')).permutation(n).slice(0, take).sort();
  const loaded = parts.source.load({ split: 'train', epoch: 0, step: 0, indices });
  const y = tf.tensor1d(
    Int32Array.from(indices, (i) => parts.labels.labelsUsed[i]),
    'int32',
  );
  try {
    const rows = gradientProbe(parts.model, trainerObjective(parts.trainer, loaded.x, y, deriveSeed(seed, 'gradient-probe-attack')), {
      seed: deriveSeed(seed, 'gradient-probe'),
      alphas: o.alphas ?? DEFAULT_ALPHAS,
      adversarial: o.adversarial,
    });
    const files = await writeGradientProbe(runDir, {
      runId: doc.run_id ?? path.basename(runDir),
      epoch: o.epoch,
      trainer: spec.trainer.name,
      seed,
      batchSize: take,
      adversarial: o.adversarial,
      rows,
    });
    return { rows, ...files };
  } finally {
    tf.dispose([loaded.x, y]);
    parts.model.dispose();
  }
}

function parseAlphas(s: string): number[] {
  const xs = s.split(',').map((t) => Number(t.trim()));
  if (xs.length === 0 || xs.some((x) => !(x > 0)))
    throw new AtflowError('ARGUMENT', `--alphas: expected comma-separated positive numbers, got '${s}'`);
  return xs;
}

/** `atflow probe gradient <runDir> --epoch E` */
export function register(program: Command): void {
  const probe = program.command('probe').description("analyses of a run folder's checkpoints");
  probe
    .command('gradient')
    .description(
      'gradient instability (docs/algorithms.md §8.2): Δ(α) = ‖∇L(θ+αd) − ' +
        '∇L(θ)‖ / ‖∇L(θ)‖ over a log grid of α; writes gradient_probe.parquet ' +
        'and .svg',
    )
    .argument('<runDir>', 'run folder with spec.json and checkpoints/')
    .requiredOption('--epoch <n>', 'checkpoint epoch (0: the initialisation, rebuilt from the run seed)')
    .option('--batch-size <n>', 'fixed batch of training examples', '128')
    .option('--alphas <list>', 'comma-separated α values (default 1e-5 … 1e-1, 9 log-spaced)')
    .option('--seed <n>', 'seed of the batch, attack and direction (default: the run seed)')
    .option(
      '--adversarial <mode>',
      'recomputed: the attack runs again at every θ+αd; fixed: the adversarial examples of θ are reused (only the outer loss moves)',
      'recomputed',
    )
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu')
    .option('--json', 'print JSON')
    .option(
      '--plugin <module[#export]>',
      "a plugin module the run's operators came from (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .action(
      async (
        runDir: string,
        opts: {
          epoch: string;
          batchSize: string;
          alphas?: string;
          seed?: string;
          adversarial: string;
          backend?: BackendName | 'auto';
          json?: boolean;
          plugin: string[];
        },
      ) => {
        const epoch = Number(opts.epoch);
        const batchSize = Number(opts.batchSize);
        if (!Number.isInteger(epoch) || epoch < 0)
          throw new AtflowError('ARGUMENT', `--epoch must be a non-negative integer (0 = the initialisation), got '${opts.epoch}'`);
        if (opts.adversarial !== 'recomputed' && opts.adversarial !== 'fixed')
          throw new AtflowError('ARGUMENT', `--adversarial must be 'recomputed' or 'fixed', got '${opts.adversarial}'`);
        if (!Number.isInteger(batchSize) || batchSize < 1)
          throw new AtflowError('ARGUMENT', `--batch-size must be a positive integer, got '${opts.batchSize}'`);
        const res = await probeGradient(runDir, {
          epoch,
          plugins: opts.plugin,
          batchSize,
          alphas: opts.alphas ? parseAlphas(opts.alphas) : undefined,
          seed: opts.seed !== undefined ? Number(opts.seed) : undefined,
          backend: opts.backend,
          adversarial: opts.adversarial,
        });
        if (opts.json) process.stdout.write(JSON.stringify(res) + '\n');
        else {
          process.stdout.write('alpha        delta        |grad|       loss\n');
          for (const r of res.rows)
            process.stdout.write(
              `${r.alpha.toExponential(2).padEnd(12)} ${r.delta.toExponential(4).padEnd(12)} ` +
                `${r.grad_norm.toExponential(4).padEnd(12)} ${r.loss.toFixed(5)}\n`,
            );
          process.stdout.write(`${res.parquet}\n${res.svg}\n`);
        }
      },
    );
}
