import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { createModel } from '../../src/models';
import { loadWeights, saveWeights } from '../../src/models/checkpoint';
import { pgdAtTrainer } from '../../src/algorithms/trainers/pgd-at';
import type { Trainer, TrainerOptions } from '../../src/algorithms/trainers/types';
import { CheckpointStore } from '../../src/store/checkpoint-store';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun, type ExecuteRunOptions } from '../../src/run/execute-run';
import { runConfig } from '../../src/cli/run-config';
import { parquetRunSink } from '../../src/logs/sinks';
import { resolveRuns } from '../../src/config/spec';
import { runSweep } from '../../src/sweep/run-sweep';
import { inspectFile } from '../../src/cli/commands/inspect';
import { BatchPlanner } from '../../src/data/batch-plans';
import { cifarFile, idxFile, idxImages, matFile, svhnVars } from '../data/helpers/official-files';
import { atflow, chmodStopsWrites, copyDir, mountTmpfs, snapshot, tableRows, tempRoot, tinySpec, unmount, writeJson } from './helpers';

const nodeFs: typeof fs = require('fs'); // the module object itself, for a spy (the import binding is read-only)

/**
 * Issue 8, "Bad input": every way a user can hand atflow something wrong gives an AtflowError (exit
 * code 2 on the CLI, no stack trace) whose message names the field / file / value and what was
 * expected, and damages nothing already written. Every case runs next to a finished run folder that
 * must stay byte-identical, in an output folder where a bad config must not even create a folder;
 * cases that touch a run folder check that folder too (its checkpoint still loads, its rows are intact).
 */

const root = tempRoot('atflow-bad-');
/** The shared output folder: holds one finished run ('guard') and must hold nothing else afterwards. */
const out = path.join(root, 'runs');
const guardConfig = writeJson(path.join(root, 'guard.json'), tinySpec('guard'));
let guardDir = '';
let guardSnapshot: Record<string, string> = {};

const sinks: ExecuteRunOptions['sinks'] = () => [parquetRunSink()];

/** The AtflowError a call throws (anything else, or no error, fails the test). */
async function atflowError(fn: () => unknown): Promise<string> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  if (!(thrown instanceof AtflowError))
    throw new Error(`expected an AtflowError, got ${thrown instanceof Error ? thrown.stack : String(thrown)}`);
  return thrown.message;
}

/** A CLI failure: exit code 2, a one-line-per-problem message on stderr, no stack trace. */
function cliError(args: string[], options: Parameters<typeof atflow>[1] = {}): string {
  const r = atflow(args, options);
  if (r.status !== 2) throw new Error(`expected exit code 2, got ${r.status ?? r.signal}: ${r.stderr}`);
  expect(r.stderr).toMatch(/^atflow: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return r.stderr;
}

/** `atflow run` as the library: writes `config` into `dir` and runs it into the shared folder. */
function run(dir: string, config: unknown, options: Partial<Parameters<typeof runConfig>[1]> = {}): Promise<string> {
  const file = writeJson(path.join(dir, 'config.json'), config);
  return atflowError(() => runConfig(file, { outDir: out, backend: 'wasm', quiet: true, log: () => undefined, ...options }));
}

/** A copy of the finished guard run, made unfinished (no _SUCCESS), in its own output folder. */
function unfinishedCopy(dir: string): { outDir: string; runDir: string } {
  const outDir = path.join(dir, 'runs');
  const runDir = copyDir(guardDir, path.join(outDir, path.basename(guardDir)));
  fs.rmSync(path.join(runDir, '_SUCCESS'));
  return { outDir, runDir };
}

/** --resume of a damaged copy of the guard run: fails, and leaves the copy exactly as it was. */
async function resumeDamaged(dir: string, damage: (runDir: string) => void): Promise<string> {
  const { outDir, runDir } = unfinishedCopy(dir);
  damage(runDir);
  const before = snapshot(runDir);
  const message = await atflowError(() =>
    runConfig(guardConfig, { outDir, backend: 'wasm', quiet: true, resume: true, log: () => undefined }),
  );
  expect(snapshot(runDir)).toEqual(before);
  return message;
}

// ---- dataset files: valid ones in the official formats, then one thing broken ----

function idxDir(dir: string, broken: Partial<Record<'trainImages' | 'trainLabels', Buffer>> = {}): string {
  const d = path.join(dir, 'idx');
  fs.mkdirSync(d, { recursive: true });
  const labels = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 10);
  fs.writeFileSync(path.join(d, 'train-images-idx3-ubyte'), broken.trainImages ?? idxFile([16, 4, 4], idxImages(16, 4, 4)));
  fs.writeFileSync(path.join(d, 'train-labels-idx1-ubyte'), broken.trainLabels ?? idxFile([16], labels(16)));
  fs.writeFileSync(path.join(d, 't10k-images-idx3-ubyte'), idxFile([8, 4, 4], idxImages(8, 4, 4)));
  fs.writeFileSync(path.join(d, 't10k-labels-idx1-ubyte'), idxFile([8], labels(8)));
  return d;
}
const idxConfig = (d: string) => tinySpec('idx', { data: { source: 'idx', options: { dir: d }, batchSize: 8 } });

function cifarDir(dir: string, broken: Record<string, Buffer>): string {
  const d = path.join(dir, 'cifar-10-batches-bin');
  fs.mkdirSync(d, { recursive: true });
  for (const f of ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin']) {
    fs.writeFileSync(path.join(d, f), broken[f] ?? cifarFile([[1], [2]]));
  }
  return d;
}
const cifarConfig = (d: string) =>
  tinySpec('cifar', { data: { source: 'cifar10', options: { dir: d }, batchSize: 2 }, model: { name: 'cnn-small' } });

function svhnDir(dir: string, train: Buffer): string {
  const d = path.join(dir, 'svhn');
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'train_32x32.mat'), train);
  fs.writeFileSync(path.join(d, 'test_32x32.mat'), matFile(svhnVars([1, 2, 3], 'double'), { compress: false }));
  return d;
}
const svhnConfig = (d: string) =>
  tinySpec('svhn', { data: { source: 'svhn', options: { dir: d }, batchSize: 2 }, model: { name: 'cnn-small' } });
const svhnTrain = (labels: number[]) => matFile(svhnVars(labels, 'double'), { compress: false });

// ---- NaN at a known step: PGD-AT whose adversarial logits of one batch row turn NaN ----

const POISON = { epoch: 2, step: 1, row: 2, call: 4 }; // 2 steps per epoch: the 4th loss is epoch 2, step 1
function poisonedTrainer(options: TrainerOptions): Trainer {
  const inner = pgdAtTrainer(options);
  let calls = 0;
  return {
    name: 'poisoned',
    attackSettings: inner.attackSettings,
    attack: (input) => inner.attack(input),
    loss(input) {
      const o = inner.loss(input);
      if (++calls !== POISON.call) return o;
      const B = o.logitsAdv.shape[0];
      const mask = tf.tensor2d(
        Float32Array.from({ length: B }, (_, i) => (i === POISON.row ? NaN : 1)),
        [B, 1],
      );
      const logitsAdv = tf.mul(o.logitsAdv, mask) as tf.Tensor2D;
      return { ...o, logitsAdv, loss: tf.add(o.loss, tf.mul(tf.sum(logitsAdv), 0)) as tf.Scalar };
    },
  };
}
/** The example at that row: the planner's shuffled order of epoch 2 (seed 7, 16 examples, batches of 8). */
const poisonedExample = [...new BatchPlanner({ train: 16, test: 8 }, { batchSize: 8, seed: 7 }).iterate('train', POISON.epoch)][POISON.step]
  .indices[POISON.row];

/** The finished guard run's tables, which a run of the same spec must reproduce after any failure. */
function expectTablesOfGuard(runDir: string, epochs: readonly number[] = [1, 2]): void {
  for (const t of ['labels.parquet', 'epochs.parquet', 'steps.parquet', 'events.parquet', 'examples']) {
    const keep = (rows: Record<string, unknown>[]) => rows.filter((r) => r.epoch === undefined || epochs.includes(r.epoch as number));
    expect(keep(tableRows(path.join(runDir, t)))).toEqual(keep(tableRows(path.join(guardDir, t))));
  }
}

/** The last good checkpoint is the one LATEST names, loads into a fresh model, and holds finite weights. */
function expectCheckpointLoads(runDir: string, epoch: number): void {
  expect(fs.readFileSync(path.join(runDir, 'checkpoints', 'LATEST'), 'utf8').trim()).toBe(`epoch-${String(epoch).padStart(4, '0')}`);
  const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 1 });
  try {
    const state = new CheckpointStore(runDir).load(model);
    expect(state?.epoch).toBe(epoch);
    for (const p of model.parameters) expect(tf.all(tf.isFinite(p.variable)).dataSync()[0]).toBe(1);
  } finally {
    model.dispose();
  }
}

async function resumeToEnd(runDir: string, name: string): Promise<void> {
  const [r] = resolveRuns(tinySpec(name));
  const outcome = await executeRun(r, { outDir: path.dirname(runDir), registry: defaultRegistry(), backend: 'wasm', resume: true, sinks });
  expect(outcome.status).toBe('completed');
  expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(true);
  expectTablesOfGuard(runDir);
}

interface BadInput {
  readonly name: string;
  /** Provokes the failure in a fresh folder `dir`; returns the error message (CLI: stderr). */
  readonly provoke: (dir: string) => Promise<string> | string;
  /** What the message must say: the field / file / value, and what was expected. */
  readonly error: RegExp;
  /** Checks beyond the guard run being byte-identical and the shared folder holding nothing new. */
  readonly intact?: (dir: string, message: string) => Promise<void> | void;
}

const CASES: BadInput[] = [
  // ---- config files ----
  {
    name: 'malformed JSON config (CLI)',
    provoke: (dir) => cliError(['run', writeJson(path.join(dir, 'broken.json'), '{"name": "x", "epochs": 2,,}'), '--out', out]),
    error: /broken\.json: not valid JSON \(.*position \d+/,
  },
  {
    name: 'config is a JSON array, not an object',
    provoke: (dir) => run(dir, [tinySpec('x')]),
    error: /config\.json: a config must be a JSON object/,
  },
  {
    name: "unknown top-level field 'epoch'",
    provoke: (dir) => run(dir, { ...tinySpec('x'), epoch: 3 }),
    error: /epoch: unknown field \(did you mean 'epochs'\?\); allowed: extends, name, .*epochs/,
  },
  {
    name: "unknown nested field 'attack.stpes'",
    provoke: (dir) => run(dir, tinySpec('x', { attack: { eps: 0.1, stpes: 3 } })),
    error: /attack\.stpes: unknown field \(did you mean 'attack\.steps'\?\); allowed: name, norm, eps, alpha, steps, restarts, randomStart/,
  },
  {
    name: "unknown source option 'dri' (data.options)",
    provoke: (dir) => run(dir, tinySpec('x', { data: { source: 'idx', options: { dri: dir } } })),
    error: /source 'idx': unknown option 'dri' \(did you mean 'dir'\?\); options: .*dir/,
  },
  {
    name: "bad enum value labelNoise.kind 'symetric'",
    provoke: (dir) => run(dir, tinySpec('x', { labelNoise: { kind: 'symetric', rate: 0.2 } })),
    error:
      /labelNoise\.kind: "symetric" is not allowed \(did you mean 'symmetric'\?\); allowed: none, symmetric, symmetric-exclusive, pair/,
  },
  {
    name: "bad enum value attack.norm 'l3'",
    provoke: (dir) => run(dir, tinySpec('x', { attack: { norm: 'l3' } })),
    error: /attack\.norm: "l3" is not allowed .*allowed: linf, l2/,
  },
  {
    name: 'negative attack.eps',
    provoke: (dir) => run(dir, tinySpec('x', { attack: { eps: -0.1 } })),
    error: /attack\.eps: Number must be greater than or equal to 0 \(got -0\.1\)/,
  },
  {
    name: 'labelNoise.rate > 1',
    provoke: (dir) => run(dir, tinySpec('x', { labelNoise: { kind: 'symmetric', rate: 1.5 } })),
    error: /labelNoise\.rate: Number must be less than or equal to 1 \(got 1\.5\)/,
  },
  {
    name: 'data.batchSize 0',
    provoke: (dir) => run(dir, tinySpec('x', { data: { source: 'mnist', batchSize: 0 } })),
    error: /data\.batchSize: Number must be greater than or equal to 1 \(got 0\)/,
  },
  {
    name: 'epochs 0',
    provoke: (dir) => run(dir, tinySpec('x', { epochs: 0 })),
    error: /epochs: Number must be greater than or equal to 1 \(got 0\)/,
  },
  {
    name: 'optimizer.lr 0',
    provoke: (dir) => run(dir, tinySpec('x', { optimizer: { lr: 0 } })),
    error: /optimizer\.lr: Number must be greater than 0 \(got 0\)/,
  },
  {
    name: 'wrong type: epochs "ten"',
    provoke: (dir) => run(dir, tinySpec('x', { epochs: 'ten' })),
    error: /epochs: Expected number, received string \(got "ten"\)/,
  },
  {
    name: 'wrong type: attack.steps 2.5',
    provoke: (dir) => run(dir, tinySpec('x', { attack: { steps: 2.5 } })),
    error: /attack\.steps: Expected integer, received float \(got 2\.5\)/,
  },
  {
    name: 'missing required field model',
    provoke: (dir) => {
      const { model: _m, ...rest } = tinySpec('x');
      return run(dir, rest);
    },
    error: /model: required object is missing/,
  },
  {
    name: 'a variant with a bad value',
    provoke: (dir) => run(dir, tinySpec('x', { variants: { fine: {}, broken: { attack: { eps: -1 } } } })),
    error: /\(variant 'broken'\): invalid config\n\s+attack\.eps: Number must be greater than or equal to 0 \(got -1\)/,
  },
  {
    name: "'extends' of a missing file",
    provoke: (dir) => run(dir, { extends: 'base-missing.json', epochs: 1 }),
    error: /base-missing\.json: cannot read config \(ENOENT\)/,
  },
  {
    name: "'extends' cycle a → b → a",
    provoke: (dir) => {
      writeJson(path.join(dir, 'b.json'), { extends: 'config.json' });
      return run(dir, { ...tinySpec('x'), extends: 'b.json' });
    },
    error: /'extends' cycle: .*config\.json → .*b\.json → .*config\.json/,
  },
  // ---- --set and other flags ----
  {
    name: "bad --set syntax 'attack.eps' (CLI)",
    provoke: (dir) => cliError(['run', writeJson(path.join(dir, 'c.json'), tinySpec('x')), '--out', out, '--set', 'attack.eps']),
    error: /--set 'attack\.eps': expected path=value, e\.g\. --set attack\.eps=0\.1/,
  },
  {
    name: '--set into a number (seed.x=1)',
    provoke: (dir) => run(dir, tinySpec('x'), { sets: ['seed.x=1'] }),
    error: /--set seed\.x: 'seed' is not an object \(it is 7\)/,
  },
  {
    name: '--set of an unknown field (attack.epz)',
    provoke: (dir) => run(dir, tinySpec('x'), { sets: ['attack.epz=0.1'] }),
    error: /attack\.epz: unknown field \(did you mean 'attack\.eps'\?\)/,
  },
  {
    name: '--only of a variant the config lacks',
    provoke: (dir) => run(dir, tinySpec('x', { variants: { a: {}, b: {} } }), { only: 'c' }),
    error: /--only c: .*config\.json has no such variant; variants: a, b/,
  },
  {
    name: "--backend 'gpu'",
    provoke: (dir) => run(dir, tinySpec('x'), { backend: 'gpu' as never }),
    error: /unknown backend 'gpu' \(ATFLOW_BACKEND \/ --backend\): (.* )?[Ee]xpected one of auto, .*wasm/,
  },
  // ---- operator names ----
  {
    name: "unknown model 'resnet19'",
    provoke: (dir) => run(dir, tinySpec('x', { model: { name: 'resnet19' } })),
    error: /unknown model 'resnet19' \(did you mean 'resnet18'\?\); registered models: .*mlp.*resnet18/,
  },
  {
    name: "unknown dataset source 'mnits'",
    provoke: (dir) => run(dir, tinySpec('x', { data: { source: 'mnits' } })),
    error:
      /unknown source 'mnits' \(did you mean 'mnist'\?\); registered sources: cifar10, cifar100, fashion-mnist, idx, mnist, svhn, synthetic/,
  },
  {
    name: "unknown trainer 'trade'",
    provoke: (dir) => run(dir, tinySpec('x', { trainer: { name: 'trade' } })),
    error: /unknown trainer 'trade' \(did you mean 'trades'\?\); registered trainers: mart, pgd-at, standard, trades/,
  },
  {
    name: "unknown schedule 'cosin'",
    provoke: (dir) => run(dir, tinySpec('x', { schedule: { name: 'cosin' } })),
    error: /schedule\.name: "cosin" is not allowed \(did you mean 'cosine'\?\); allowed: multistep, step, cosine, constant/,
  },
  {
    name: "unknown attack 'pgdd'",
    provoke: (dir) => run(dir, tinySpec('x', { attack: { name: 'pgdd' } })),
    error: /attack\.name: unknown attack 'pgdd' \(did you mean 'pgd'\?\); registered attacks: .*fgsm.*pgd/,
  },
  {
    name: "attack 'fgsm' (registered, but training runs the trainer's PGD)",
    provoke: (dir) => run(dir, tinySpec('x', { eval: { attack: { name: 'fgsm' } } })),
    error: /eval\.attack\.name: 'fgsm' is not used .*FGSM = steps 1, alpha = eps/,
  },
  // ---- dataset files ----
  {
    name: 'IDX files missing',
    provoke: (dir) => run(dir, idxConfig(path.join(dir, 'empty'))),
    error: /idx: data files not found in .*empty \(does not exist\); expected train-images-idx3-ubyte\.gz or train-images-idx3-ubyte/,
  },
  {
    name: 'IDX images file truncated',
    provoke: (dir) => run(dir, idxConfig(idxDir(dir, { trainImages: idxFile([16, 4, 4], idxImages(16, 4, 4)).subarray(0, 200) }))),
    error:
      /train-images-idx3-ubyte: size 200 bytes does not match its header \(dimensions 16x4x4: 272 bytes\); the file is truncated \(.*idx\/train-images-idx3-ubyte\)/,
  },
  {
    name: 'IDX labels file with the wrong magic',
    provoke: (dir) => run(dir, idxConfig(idxDir(dir, { trainLabels: idxFile([16, 4, 4], idxImages(16, 4, 4)) }))),
    error: /train-labels-idx1-ubyte: magic number 0x00000803; expected an IDX label file \(magic 0x00000801\)/,
  },
  {
    name: 'IDX labels and images of different sizes',
    provoke: (dir) => run(dir, idxConfig(idxDir(dir, { trainLabels: idxFile([15], new Uint8Array(15)) }))),
    error: /train-labels-idx1-ubyte has 15 labels but train-images-idx3-ubyte has 16 images; expected the same count/,
  },
  {
    name: 'IDX label out of range',
    provoke: (dir) =>
      run(
        dir,
        idxConfig(
          idxDir(dir, {
            trainLabels: idxFile(
              [16],
              Uint8Array.from({ length: 16 }, (_, i) => (i === 3 ? 12 : 1)),
            ),
          }),
        ),
      ),
    error: /train-labels-idx1-ubyte: label 12 at index 3; expected 0\.\.9/,
  },
  {
    name: 'IDX gzip file cut short',
    provoke: (dir) => {
      const d = idxDir(dir);
      const gz = zlib.gzipSync(fs.readFileSync(path.join(d, 'train-images-idx3-ubyte')));
      fs.rmSync(path.join(d, 'train-images-idx3-ubyte'));
      fs.writeFileSync(path.join(d, 'train-images-idx3-ubyte.gz'), gz.subarray(0, gz.length >> 1));
      return run(dir, idxConfig(d));
    },
    error: /train-images-idx3-ubyte\.gz: gzip data is corrupt or truncated/,
  },
  {
    name: 'CIFAR-10 batch of the wrong size',
    provoke: (dir) =>
      run(dir, cifarConfig(cifarDir(dir, { 'data_batch_3.bin': Buffer.concat([cifarFile([[1], [2]]), Buffer.alloc(100)]) }))),
    error: /data_batch_3\.bin: size 6246 bytes is not a multiple of the 3073-byte CIFAR-10 record/,
  },
  {
    name: 'CIFAR-10 label out of range',
    provoke: (dir) => run(dir, cifarConfig(cifarDir(dir, { 'data_batch_2.bin': cifarFile([[1], [10]]) }))),
    error: /data_batch_2\.bin: record 1 has label 10; expected 0\.\.9 for CIFAR-10/,
  },
  {
    name: 'SVHN .mat truncated',
    provoke: (dir) => {
      const full = svhnTrain([1, 2, 3, 4]);
      return run(dir, svhnConfig(svhnDir(dir, full.subarray(0, full.length - 5000))));
    },
    error: /train_32x32\.mat: truncated MAT-file: data element at byte 128 declares \d+ bytes but only \d+ remain/,
  },
  {
    name: 'SVHN .mat with the wrong magic (not a MAT-file)',
    provoke: (dir) => run(dir, svhnConfig(svhnDir(dir, Buffer.from('PK\u0003\u0004 this is a zip archive, not MATLAB'.padEnd(300, '.'))))),
    error: /train_32x32\.mat: not a MATLAB 5\.0 MAT-file/,
  },
  {
    name: 'SVHN label out of range',
    provoke: (dir) => run(dir, svhnConfig(svhnDir(dir, svhnTrain([1, 11, 3])))),
    error: /train_32x32\.mat: y\(2\) = 11; expected an integer label 1\.\.10/,
  },
  // ---- run folders ----
  {
    name: '--resume of a folder holding a different config',
    provoke: (dir) =>
      resumeDamaged(dir, (runDir) => {
        const doc = JSON.parse(fs.readFileSync(path.join(runDir, 'spec.json'), 'utf8'));
        doc.spec.attack.eps = 0.2;
        fs.writeFileSync(path.join(runDir, 'spec.json'), JSON.stringify(doc));
      }),
    error:
      /guard-[0-9a-f]{12}: the folder holds a run of a different config \(spec\.json differs at attack\.eps \(folder: 0\.2, now: 0\.1\)\)/,
  },
  {
    name: 'an unfinished folder without --resume',
    provoke: async (dir) => {
      const { outDir, runDir } = unfinishedCopy(dir);
      const before = snapshot(runDir);
      const message = await atflowError(() => runConfig(guardConfig, { outDir, backend: 'wasm', quiet: true, log: () => undefined }));
      expect(snapshot(runDir)).toEqual(before);
      return message;
    },
    error: /guard-[0-9a-f]{12}: an unfinished run is already there; continue it with --resume, or remove the folder/,
  },
  {
    name: '--resume with a truncated model.safetensors',
    provoke: (dir) =>
      resumeDamaged(dir, (runDir) => {
        const f = path.join(runDir, 'checkpoints', 'epoch-0002', 'model.safetensors');
        fs.truncateSync(f, fs.statSync(f).size - 1000);
      }),
    error:
      /safetensors file .*checkpoints\/epoch-0002\/model\.safetensors: truncated: tensor '.*' ends at data byte \d+ but the file holds only \d+ data bytes/,
  },
  {
    name: '--resume with LATEST pointing at a missing folder',
    provoke: (dir) => resumeDamaged(dir, (runDir) => fs.writeFileSync(path.join(runDir, 'checkpoints', 'LATEST'), 'epoch-0009\n')),
    error: /checkpoints\/LATEST: points at 'epoch-0009', which is not a complete checkpoint folder/,
  },
  {
    name: '--resume with an unreadable state.json',
    provoke: (dir) =>
      resumeDamaged(dir, (runDir) => fs.writeFileSync(path.join(runDir, 'checkpoints', 'epoch-0002', 'state.json'), '{"epoch": 2, "ste')),
    error: /checkpoints\/epoch-0002\/state\.json: unreadable checkpoint state/,
  },
  {
    name: '--resume with a state.json lacking the optimizer state',
    provoke: (dir) =>
      resumeDamaged(dir, (runDir) =>
        fs.writeFileSync(path.join(runDir, 'checkpoints', 'epoch-0002', 'state.json'), '{"epoch": 2, "steps": 4}'),
      ),
    error: /checkpoints\/epoch-0002\/state\.json: no optimizer state \('sgd'\); the checkpoint is damaged/,
  },
  {
    name: '--resume with an unreadable spec.json',
    provoke: (dir) => resumeDamaged(dir, (runDir) => fs.writeFileSync(path.join(runDir, 'spec.json'), '{"run_id": ')),
    error: /guard-[0-9a-f]{12}\/spec\.json: unreadable \(.*\); the run folder is damaged/,
  },
  {
    name: '--out is an existing regular file (CLI)',
    provoke: (dir) =>
      cliError(['run', guardConfig, '--out', writeJson(path.join(dir, 'not-a-folder'), 'x'), '--backend', 'wasm', '--quiet']),
    error: /cannot create the run folder .*not-a-folder\/guard-[0-9a-f]{12}: .*not-a-folder is a file, not a folder \(ENOTDIR\)/,
  },
  {
    name: 'unwritable output folder (chmod 0555; as root: a read-only mount, else a path below a file)',
    provoke: async (dir) => {
      const target = path.join(dir, 'readonly');
      if (chmodStopsWrites(target)) {
        fs.chmodSync(target, 0o555);
        try {
          return await run(dir, tinySpec('ro'), { outDir: target });
        } finally {
          fs.chmodSync(target, 0o755);
        }
      }
      if (mountTmpfs(target, '1m', true)) {
        try {
          return await run(dir, tinySpec('ro'), { outDir: target });
        } finally {
          unmount(target);
        }
      }
      fs.rmSync(target, { recursive: true });
      fs.writeFileSync(target, '');
      return run(dir, tinySpec('ro'), { outDir: path.join(target, 'runs') });
    },
    error:
      /cannot create the run folder .*readonly\/(runs\/)?ro-[0-9a-f]{12}: .*readonly (is not writable \((EACCES|EROFS)\)|is a file, not a folder \(ENOTDIR\))/,
  },
  {
    name: 'disk full while writing (a 4 MB tmpfs: one checkpoint fits, two do not; without mount rights a 512 KiB file-size limit) (CLI)',
    provoke: (dir) => {
      const config = writeJson(path.join(dir, 'full.json'), tinySpec('full'));
      const target = path.join(dir, 'disk');
      const args = ['run', config, '--out', target, '--backend', 'wasm', '--quiet'];
      if (!mountTmpfs(target, '4000k')) return cliError(args, { shellPrefix: "trap '' XFSZ; ulimit -f 512;" });
      try {
        return cliError(args);
      } finally {
        copyDir(target, path.join(dir, 'copy'));
        unmount(target);
      }
    },
    error: /cannot write .*full-[0-9a-f]{12}\/checkpoints\/.*(ENOSPC: no space left on device|EFBIG: file too large)/,
    intact: async (dir, message) => {
      const tmpfs = fs.existsSync(path.join(dir, 'copy'));
      const disk = path.join(dir, tmpfs ? 'copy' : 'disk');
      const runDir = path.join(disk, fs.readdirSync(disk)[0]);
      expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(false);
      if (tmpfs) {
        // epoch 1 fit on the disk, epoch 2's checkpoint did not: the first one stays the last good one
        expect(message).toMatch(/cannot write checkpoint .*epoch-0002: .*; the previous checkpoint epoch-0001 is kept/);
        expectCheckpointLoads(runDir, 1);
      }
      // once there is room again, --resume finishes the run as if nothing had happened
      await resumeToEnd(runDir, 'full');
    },
  },
  {
    name: 'disk full while writing a checkpoint (ENOSPC from /dev/full)',
    provoke: (dir) => {
      const [r] = resolveRuns(tinySpec('devfull'));
      const runDir = path.join(dir, 'runs', r.runId);
      return atflowError(() =>
        executeRun(r, {
          outDir: path.join(dir, 'runs'),
          registry: defaultRegistry(),
          backend: 'wasm',
          sinks,
          // after epoch 1's checkpoint, the next LATEST write lands on a full device: its temp file is
          // opened on /dev/full (a link planted at the temp name no longer works: temp files are created
          // exclusively and never written through a link)
          observe: (ev$) =>
            ev$.subscribe((ev) => {
              if (ev.type !== 'checkpoint' || ev.epoch !== 1) return;
              const open = nodeFs.openSync;
              jest
                .spyOn(nodeFs, 'openSync')
                .mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) =>
                  String(p).startsWith(path.join(runDir, 'checkpoints', '.LATEST.'))
                    ? open('/dev/full', 'w')
                    : open(p, flags ?? 'r', mode)) as typeof fs.openSync);
            }),
        }),
      ).finally(() => jest.restoreAllMocks());
    },
    error: /cannot write .*devfull-[0-9a-f]{12}\/checkpoints\/LATEST: ENOSPC: no space left on device/,
    intact: async (dir) => {
      const runDir = path.join(dir, 'runs', fs.readdirSync(path.join(dir, 'runs'))[0]);
      expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(false);
      expectCheckpointLoads(runDir, 1);
      await resumeToEnd(runDir, 'devfull');
    },
  },
  // ---- non-finite training ----
  {
    name: 'NaN loss at a known step (a trainer whose logits of one example turn NaN)',
    provoke: async (dir) => {
      const [r] = resolveRuns(tinySpec('nan', { trainer: { name: 'poisoned' } }));
      const registry = defaultRegistry().register('trainer', 'poisoned', poisonedTrainer);
      const tensors = tf.memory().numTensors;
      const message = await atflowError(() => executeRun(r, { outDir: path.join(dir, 'runs'), registry, backend: 'wasm', sinks }));
      expect(tf.memory().numTensors).toBe(tensors);
      return message;
    },
    error:
      /train: poisoned loss NaN \/ squared gradient norm NaN at epoch 2, step 1; first non-finite per-example values at example (\d+); the update was not applied/,
    intact: (dir, message) => {
      expect(Number(/at example (\d+);/.exec(message)![1])).toBe(poisonedExample);
      const runDir = path.join(dir, 'runs', fs.readdirSync(path.join(dir, 'runs'))[0]);
      expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(false);
      expectCheckpointLoads(runDir, 1);
      // epoch 1 is exactly the guard run's epoch 1
      expect(tableRows(path.join(runDir, 'examples', 'epoch-0001'))).toEqual(tableRows(path.join(guardDir, 'examples', 'epoch-0001')));
    },
  },
  {
    name: 'learning rate 1e30: the gradient overflows (CLI)',
    provoke: (dir) =>
      cliError([
        'run',
        writeJson(path.join(dir, 'c.json'), tinySpec('lr')),
        '--out',
        path.join(dir, 'runs'),
        '--set',
        'optimizer.lr=1e30',
        '--backend',
        'wasm',
        '--quiet',
      ]),
    error: /train: pgd-at loss [-\d.e+]+ \/ squared gradient norm (NaN|Infinity) at epoch 1, step 1; .*the update was not applied/,
    intact: (dir) => {
      const runDir = path.join(dir, 'runs', fs.readdirSync(path.join(dir, 'runs'))[0]);
      expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(false);
      expect(fs.existsSync(path.join(runDir, 'checkpoints', 'LATEST'))).toBe(false);
    },
  },
  {
    name: 'learning rate 1e30 on the data-parallel path (ATFLOW_WORKERS=2, CLI)',
    provoke: (dir) =>
      cliError(
        [
          'run',
          writeJson(path.join(dir, 'c.json'), tinySpec('lr')),
          '--out',
          path.join(dir, 'runs'),
          '--set',
          'optimizer.lr=1e30',
          '--backend',
          'wasm',
          '--quiet',
        ],
        {
          env: { ATFLOW_WORKERS: '2' },
        },
      ),
    error:
      /data-parallel train step: loss [-\d.e+]+ \/ squared gradient norm (NaN|Infinity) at epoch 1, step 1; .*the update was not applied/,
    intact: (dir) => {
      const runDir = path.join(dir, 'runs', fs.readdirSync(path.join(dir, 'runs'))[0]);
      expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(false);
      expect(fs.existsSync(path.join(runDir, 'checkpoints', 'LATEST'))).toBe(false);
    },
  },
  // ---- other commands ----
  {
    name: 'loadWeights of a corrupted safetensors file (model left unchanged)',
    provoke: async (dir) => {
      const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 3 });
      const file = path.join(dir, 'weights.safetensors');
      saveWeights(model, file);
      const bytes = fs.readFileSync(file);
      bytes.write('#garbage#', 8, 'latin1'); // the JSON header's first bytes overwritten
      fs.writeFileSync(file, bytes);
      const before = model.parameters.map((p) => p.variable.dataSync().slice());
      try {
        return await atflowError(() => loadWeights(model, file));
      } finally {
        expect(model.parameters.map((p) => p.variable.dataSync().slice())).toEqual(before);
        model.dispose();
      }
    },
    error: /safetensors file .*weights\.safetensors: header is not valid JSON \(.*\): not a safetensors file\?/,
  },
  {
    name: "loadWeights of another model's file (model left unchanged)",
    provoke: async (dir) => {
      const other = createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: 3 });
      const file = path.join(dir, 'cnn.safetensors');
      saveWeights(other, file);
      other.dispose();
      const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 3 });
      const before = model.parameters.map((p) => p.variable.dataSync().slice());
      try {
        return await atflowError(() => loadWeights(model, file));
      } finally {
        expect(model.parameters.map((p) => p.variable.dataSync().slice())).toEqual(before);
        model.dispose();
      }
    },
    error: /checkpoint .*cnn\.safetensors: missing tensor\(s\) 'fc3\.weight', 'fc3\.bias' that model 'mlp' needs/,
  },
  {
    name: 'sweep file with an unknown executor',
    provoke: (dir) => {
      const file = writeJson(path.join(dir, 'sweep.json'), {
        base: guardConfig,
        axes: { seed: [1, 2] },
        executor: { kind: 'slurm' },
        out: path.join(dir, 'sweep-out'),
      });
      return atflowError(() => runSweep(file, { dryRun: true }));
    },
    error: /sweep\.json.*executor\.kind.*unknown executor kind "slurm"; expected one of: local, array/,
    intact: (dir) => expect(fs.existsSync(path.join(dir, 'sweep-out'))).toBe(false),
  },
  {
    name: 'probe gradient on a run without checkpoints (CLI)',
    provoke: (dir) => {
      const { runDir } = unfinishedCopy(dir);
      fs.rmSync(path.join(runDir, 'checkpoints'), { recursive: true });
      return cliError(['probe', 'gradient', runDir, '--epoch', '1', '--backend', 'wasm']);
    },
    error: /no checkpoint for epoch 1 in .*guard-[0-9a-f]{12} \(checkpoints kept: none[;)]/,
  },
  {
    name: 'inspect of a file that is not Parquet (CLI)',
    provoke: (dir) => cliError(['inspect', writeJson(path.join(dir, 'fake.parquet'), 'epoch,loss\n1,0.5\n')]),
    error: /fake\.parquet is not a readable Parquet file/,
  },
  {
    name: 'inspect of a CSV file',
    provoke: (dir) => atflowError(() => inspectFile(writeJson(path.join(dir, 'table.csv'), 'a,b\n1,2\n'))),
    error: /table\.csv: expected a \.parquet, \.arrow or \.arrows file/,
  },
];

describe('bad input: a clear, named error and nothing damaged', () => {
  beforeAll(async () => {
    await initBackend('wasm');
    const [guard] = resolveRuns(tinySpec('guard'));
    const outcome = await executeRun(guard, { outDir: out, registry: defaultRegistry(), backend: 'wasm', sinks });
    expect(outcome.status).toBe('completed');
    guardDir = outcome.runDir;
    guardSnapshot = snapshot(guardDir);
  });

  it('covers at least 30 bad inputs', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const dir = path.join(root, `case-${String(i).padStart(2, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    const message = await c.provoke(dir);
    expect(message).toMatch(c.error);
    await c.intact?.(dir, message);
    // the finished run next to it is byte-identical, and a failure wrote nothing into the shared folder
    expect(snapshot(guardDir)).toEqual(guardSnapshot);
    expect(fs.readdirSync(out)).toEqual([path.basename(guardDir)]);
  });
});
