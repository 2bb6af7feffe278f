import type { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../backend/select';
import { AtflowError } from '../../core/errors';
import type { Model } from '../../core/model';
import { createModel, loadWeights } from '../../models';
import { readSafetensorsFile } from '../../models/safetensors';
import { checkEps } from '../../operators/autoattack';
import { buildRun } from '../../pipelines/build-run';
import { registryWithPlugins } from '../../pipelines/default-registry';
import { evaluateAutoAttack, type AutoAttackEvalData, type AutoAttackSummary } from '../../pipelines/evaluate-autoattack';
import { validateSpec } from '../../pipelines/spec';
import { formatEvalProgress, formatSeconds } from '../../sinks/progress';
import { createSource } from '../../sources';

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

function checkpointFile(runDir: string, which: string): { file: string; label: string } {
  const dir = path.join(runDir, 'checkpoints');
  if (which === 'best') {
    const file = path.join(dir, 'best.safetensors');
    if (fs.existsSync(file)) {
      const epoch = readSafetensorsFile(file).metadata?.epoch;
      return { file, label: `best${epoch ? ` (epoch ${epoch})` : ''}` };
    }
    // no best file: the best epoch was the last one (best.safetensors is only written when it differs)
    which = 'final';
  }
  if (which === 'final') {
    const latest = path.join(dir, 'LATEST');
    if (!fs.existsSync(latest)) throw new AtflowError('DATA_FILE', `${runDir}: no checkpoint (checkpoints/LATEST is missing); was the run started with checkpoints disabled?`, { runDir });
    const name = fs.readFileSync(latest, 'utf8').trim();
    return { file: path.join(dir, name, 'model.safetensors'), label: `final (epoch ${Number(name.replace('epoch-', ''))})` };
  }
  const m = /^epoch-(\d+)$/.exec(which);
  if (!m) throw new AtflowError('ARGUMENT', `--checkpoint must be best, final or epoch-N, got '${which}'`, { checkpoint: which });
  const file = path.join(dir, `epoch-${m[1].padStart(4, '0')}`, 'model.safetensors');
  if (!fs.existsSync(file)) {
    const kept = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith('epoch-')) : [];
    throw new AtflowError('DATA_FILE', `${file} does not exist; kept checkpoints: ${kept.join(', ') || 'none'} (checkpoint.keep = 'all' keeps every epoch)`, { file });
  }
  return { file, label: `epoch ${Number(m[1])}` };
}

function fromRunDir(runDir: string, o: EvalOptions, n: number): Target {
  const specFile = path.join(runDir, 'spec.json');
  if (!fs.existsSync(specFile)) throw new AtflowError('DATA_FILE', `${runDir}: not a run folder (no spec.json)`, { runDir });
  const doc = JSON.parse(fs.readFileSync(specFile, 'utf8')) as { spec?: Record<string, unknown> };
  const { variant: _v, meta: _m, ...raw } = doc.spec ?? {};
  const spec = validateSpec(raw, specFile);
  const parts = buildRun(spec, registryWithPlugins(o.plugin));
  const { file, label } = checkpointFile(runDir, o.checkpoint);
  loadWeights(parts.model, file);
  const split = o.split as 'test' | 'train';
  const data = take(parts.source, split, n, split === 'train' ? parts.labels.labelsUsed : undefined);
  return { model: parts.model, data, eps: o.eps !== undefined ? parseEps(o.eps) : spec.attack.eps, norm: (o.norm as 'linf' | 'l2' | undefined) ?? spec.attack.norm, checkpoint: label, outRoot: runDir };
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
    .option('--out <dir>', 'where eval/ goes for a weights file (default: next to it)')
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
      const outDir = path.join(t.outRoot, 'eval', name);
      const tty = process.stderr.isTTY;
      const summary: AutoAttackSummary = await evaluateAutoAttack(t.model, t.data, outDir, {
        eps: t.eps,
        norm: t.norm,
        attacks,
        budget,
        batchSize: positiveInt('--batch-size', o.batchSize),
        seed: Number(o.seed),
        checkpoint: t.checkpoint,
        split: o.split as 'test' | 'train',
        resume: !!o.resume,
        onProgress: o.quiet
          ? undefined
          : (p) => {
              // a TTY rewrites one line (clearing what a longer line left); elsewhere a line per event
              const line = formatEvalProgress(p);
              process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
            },
      });
      if (tty && !o.quiet) process.stderr.write('\n');
      t.model.dispose();
      for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
      const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
      process.stdout.write(`${summary.checkpoint}, ${summary.split} n=${summary.n}, ${summary.norm} ε=${summary.eps}: clean ${pct(summary.clean_acc)}\n`);
      for (const [stage, acc] of Object.entries(summary.robust_acc_after)) {
        const time = summary.stage_time[stage];
        process.stdout.write(`  after ${stage.padEnd(8)} ${pct(acc).padStart(7)}  (${time.attacked} attacked, ${formatSeconds(time.seconds)})\n`);
      }
      process.stdout.write(`  AutoAttack (${summary.attacks.join(' → ')}): ${pct(summary.robust_acc)} in ${formatSeconds(summary.seconds)}\n${outDir}\n`);
    });
}
