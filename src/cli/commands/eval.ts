import type { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../backend/select';
import { AtflowError } from '../../core/errors';
import type { Model } from '../../core/model';
import { createModel, loadWeights } from '../../models';
import { readSafetensorsFile } from '../../models/safetensors';
import { checkName, createFolder, RunFolder } from '../../store/run-folder';
import { CheckpointStore } from '../../store/checkpoint-store';
import { acquireLock } from '../../store/run-lock';
import { checkEps } from '../../evaluation/autoattack';
import { buildRun } from '../../config/build-run';
import { registryWithPlugins } from '../../run/default-registry';
import { evaluateAutoAttack, type AutoAttackEvalData, type AutoAttackSummary } from '../../run/evaluate-autoattack';
import { validateSpec } from '../../config/spec';
import { createSource } from '../../data';

/**
 * `atflow eval <runDir | weights.safetensors>`: AutoAttack (standard by default) on a checkpoint,
 * writing <out>/eval/<name>/{robustness.parquet, summary.json}. See docs/autoattack.md.
 */
interface EvalOptions {
  checkpoint: string;
  /** Plugin modules the run's model / trainer came from (--plugin). */
  plugin?: string[];
  attacks: string;
  n: string;
  eps?: string;
  norm?: string;
  split: string;
  resume?: boolean;
  name?: string;
  out?: string;
  batchSize: string;
  seed: string;
  backend?: string;
  quiet?: boolean;
  model?: string;
  dataset?: string;
  classes?: string;
  apgdSteps?: string;
  targets?: string;
  fabSteps?: string;
  squareQueries?: string;
}

interface Target {
  model: Model;
  data: AutoAttackEvalData;
  eps: number;
  norm: 'linf' | 'l2';
  checkpoint: string;
  outRoot: string;
}

function parseEps(text: string): number {
  const m = /^\s*([0-9.eE+-]+)\s*(?:\/\s*([0-9.eE+-]+))?\s*$/.exec(text);
  const v = m ? Number(m[1]) / (m[2] !== undefined ? Number(m[2]) : 1) : NaN;
  if (!Number.isFinite(v)) throw new AtflowError('ARGUMENT', `--eps: '${text}' is not a number or a fraction such as 8/255`, { eps: text });
  return v;
}

function positiveInt(flag: string, text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new AtflowError('ARGUMENT', `${flag} must be an integer ≥ 1, got '${text}'`, { flag, value: text });
  return v;
}

function take(source: ReturnType<typeof createSource>, split: 'test' | 'train', n: number, labelsUsed?: Int32Array): AutoAttackEvalData {
  const size = Math.min(n, source.split(split).size);
  const indices = Int32Array.from({ length: size }, (_, i) => i);
  const b = source.load({ split, epoch: 0, step: 0, indices });
  const x = Float32Array.from(b.x.dataSync());
  b.x.dispose();
  // --split train attacks the labels the run trained on (noisy labels included)
  const labels = labelsUsed ? Int32Array.from(indices, (i) => labelsUsed[i]) : Int32Array.from(b.labelsTrue);
  return { x, labels, index: indices };
}

/** best | final | epoch-N of a run folder, through its checkpoint store (which checks what it hands out). */
function checkpointFile(store: CheckpointStore, which: string): { file: string; label: string } {
  if (which === 'best' || which === 'final') return store.weightsFile(which);
  const m = /^epoch-(\d+)$/.exec(which);
  if (!m) throw new AtflowError('ARGUMENT', `--checkpoint must be best, final or epoch-N, got '${which}'`, { checkpoint: which });
  return store.weightsFile(Number(m[1]));
}

function fromRunDir(runDir: string, o: EvalOptions, n: number): Target {
  const folder = new RunFolder(runDir);
  folder.checkShape();
  const spec = validateSpec(folder.readConfig(), folder.specFile);
  const { file, label } = checkpointFile(new CheckpointStore(folder), o.checkpoint);
  const parts = buildRun(spec, registryWithPlugins(o.plugin));
  loadWeights(parts.model, file);
  const split = o.split as 'test' | 'train';
  const data = take(parts.source, split, n, split === 'train' ? parts.labels.labelsUsed : undefined);
  return { model: parts.model, data, eps: o.eps !== undefined ? parseEps(o.eps) : spec.attack.eps, norm: (o.norm as 'linf' | 'l2' | undefined) ?? spec.attack.norm, checkpoint: label, outRoot: o.out ?? runDir };
}

function fromWeights(file: string, o: EvalOptions, n: number): Target {
  const meta = readSafetensorsFile(file).metadata ?? {};
  const modelName = o.model ?? meta['atflow.model'];
  if (!modelName) throw new AtflowError('ARGUMENT', `${file} does not say which model it holds (no atflow.model metadata): pass --model (e.g. cnn-small)`, { file });
  const datasetName = o.dataset;
  if (!datasetName) throw new AtflowError('ARGUMENT', `evaluating a bare weights file needs --dataset (e.g. mnist, cifar10)`, { file });
  const source = createSource(datasetName, {});
  const classes = o.classes !== undefined ? positiveInt('--classes', o.classes) : meta['atflow.num_classes'] ? Number(meta['atflow.num_classes']) : source.info.numClasses;
  if (classes !== source.info.numClasses) {
    throw new AtflowError('ARGUMENT', `${file} holds a ${classes}-class model but dataset '${datasetName}' has ${source.info.numClasses} classes`, { file, classes });
  }
  const model = createModel(modelName, { numClasses: classes, inputShape: source.info.imageShape as [number, number, number], seed: 0 });
  loadWeights(model, file);
  if (o.eps === undefined) throw new AtflowError('ARGUMENT', `evaluating a bare weights file needs --eps (e.g. 8/255 or 0.3)`, { file });
  const data = take(source, o.split as 'test' | 'train', n);
  return { model, data, eps: parseEps(o.eps), norm: (o.norm as 'linf' | 'l2' | undefined) ?? 'linf', checkpoint: path.basename(file), outRoot: o.out ?? path.dirname(file) };
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  return s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description("AutoAttack (standard: APGD-CE → APGD-T → FAB-T → Square) on a run's checkpoint or a weights file; writes eval/<name>/robustness.parquet and summary.json")
    .argument('<target>', 'a run folder (runs/<run_id>) or a .safetensors weights file')
    .option('--checkpoint <which>', 'best | final | epoch-N (run folders)', 'best')
    .option('--plugin <module[#export]>', "a plugin module the run's operators came from (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--attacks <list>', "standard | rand | a comma-separated list of apgd-ce, apgd-dlr, apgd-t, fab-t, square", 'standard')
    .option('--n <count>', 'examples (the first n of the split)', '10000')
    .option('--eps <eps>', "ε on the [0, 1] scale, e.g. 8/255 (default: the run's training ε)")
    .option('--norm <norm>', "linf | l2 (default: the run's)")
    .option('--split <split>', 'test | train (train: against the labels the run trained on)', 'test')
    .option('--resume', 'continue an interrupted evaluation from eval/<name>/state.jsonl')
    .option('--name <name>', 'folder name under eval/ (default: <checkpoint>-<attacks>-<norm>)')
    .option('--out <dir>', 'where eval/ goes (default: the run folder, or next to a weights file)')
    .option('--batch-size <n>', 'examples attacked together', '500')
    .option('--seed <n>', 'seed of the attacks', '0')
    .option('--quiet', 'no progress line')
    .option('--backend <name>', 'tensorflow | wasm | cpu (default: the fastest available)')
    .option('--model <name>', 'model of a weights file without atflow metadata')
    .option('--dataset <name>', 'dataset of a weights file (mnist, cifar10, ...)')
    .option('--classes <k>', 'classes of a weights file without atflow metadata')
    .option('--apgd-steps <n>', 'APGD iterations (default 100)')
    .option('--targets <n>', 'APGD-T / FAB-T target classes (default 9)')
    .option('--fab-steps <n>', 'FAB-T iterations (default 100)')
    .option('--square-queries <n>', 'Square queries (default 5000)')
    .action(async (target: string, o: EvalOptions) => {
      await initBackend(o.backend as Parameters<typeof initBackend>[0]);
      if (o.norm !== undefined && o.norm !== 'linf' && o.norm !== 'l2') throw new AtflowError('ARGUMENT', `--norm must be linf or l2, got '${o.norm}'`, { norm: o.norm });
      if (o.split !== 'test' && o.split !== 'train') throw new AtflowError('ARGUMENT', `--split must be test or train, got '${o.split}'`, { split: o.split });
      const n = positiveInt('--n', o.n);
      if (o.name !== undefined) checkName(o.name, '--name');
      if (o.eps !== undefined) checkEps(parseEps(o.eps), (o.norm as 'linf' | 'l2' | undefined) ?? 'linf');
      if (!fs.existsSync(target)) throw new AtflowError('DATA_FILE', `${target} does not exist`, { target });
      const t = fs.statSync(target).isDirectory() ? fromRunDir(target, o, n) : fromWeights(target, o, n);
      const attacks = o.attacks === 'standard' || o.attacks === 'rand' ? o.attacks : o.attacks.split(',').map((s) => s.trim()).filter(Boolean);
      const budget = {
        ...(o.apgdSteps ? { apgdSteps: positiveInt('--apgd-steps', o.apgdSteps) } : {}),
        ...(o.targets ? { targets: positiveInt('--targets', o.targets) } : {}),
        ...(o.fabSteps ? { fabSteps: positiveInt('--fab-steps', o.fabSteps) } : {}),
        ...(o.squareQueries ? { squareQueries: positiveInt('--square-queries', o.squareQueries) } : {}),
      };
      const checkpointTag = o.checkpoint.replace(/[^A-Za-z0-9-]/g, '');
      const name = o.name ?? `${fs.statSync(target).isDirectory() ? checkpointTag : path.basename(target, '.safetensors')}-${typeof attacks === 'string' ? attacks : attacks.join('+')}-${t.norm}-${o.split}`;
      // names are names: the folder stays under <out>/eval/
      const outDir = new RunFolder(t.outRoot).evalDir(name);
      try {
        createFolder(outDir, 'the evaluation folder');
      } catch (e) {
        if (e instanceof AtflowError && o.out === undefined) throw new AtflowError(e.code, `${e.message}; --out <dir> writes the evaluation elsewhere`, e.details);
        throw e;
      }
      const lock = acquireLock(outDir, { command: 'atflow eval' });
      const started = Date.now();
      const stageStart = new Map<string, number>();
      const tty = process.stderr.isTTY;
      let summary: AutoAttackSummary;
      try {
        summary = await evaluateAutoAttack(t.model, t.data, outDir, {
          eps: t.eps,
          norm: t.norm,
          attacks,
          budget,
          batchSize: positiveInt('--batch-size', o.batchSize),
          seed: Number(o.seed),
          checkpoint: t.checkpoint,
          split: o.split as 'test' | 'train',
          resume: !!o.resume,
          onProgress: o.quiet ? undefined : (p) => {
            const now = Date.now();
            const key = `${p.batch}`;
            if (!stageStart.has(key)) stageStart.set(key, started);
            const elapsed = (now - started) / 1000;
            const fraction = (p.batch + (p.stageIndex + 1) / p.stages) / p.batches;
            const eta = fraction > 0 ? elapsed / fraction - elapsed : NaN;
            const line = `autoattack [${'#'.repeat(Math.round(fraction * 20)).padEnd(20, '.')}] batch ${p.batch + 1}/${p.batches} ${p.stage} (${p.stageIndex + 1}/${p.stages}) ${formatSeconds(elapsed)} elapsed, ETA ${formatSeconds(eta)}`;
            process.stderr.write(tty ? `\r${line}` : `${line}\n`);
          },
        });
      } finally {
        lock.release();
      }
      if (tty && !o.quiet) process.stderr.write('\n');
      t.model.dispose();
      for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
      const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
      process.stdout.write(`${summary.checkpoint}, ${summary.split} n=${summary.n}, ${summary.norm} ε=${summary.eps}: clean ${pct(summary.clean_acc)}\n`);
      for (const [stage, acc] of Object.entries(summary.robust_acc_after)) process.stdout.write(`  after ${stage.padEnd(8)} ${pct(acc)}\n`);
      process.stdout.write(`  AutoAttack (${summary.attacks.join(' → ')}): ${pct(summary.robust_acc)}\n${outDir}\n`);
    });
}
