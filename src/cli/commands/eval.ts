import type { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../backend/select';
import { AtflowError } from '../../core/errors';
import type { Model } from '../../core/model';
import { checkKeyMap, createModel, loadWeights, type KeyMap } from '../../models';
import { readSafetensorsHeader } from '../../models/safetensors';
import { threatModel, type ThreatModel } from '../../evaluation/threat-model';
import { buildRun, threatModelOf } from '../../config/build-run';
import { registryForRun } from '../../run/default-registry';
import {
  autoAttackHeader,
  evaluateAutoAttack,
  type AutoAttackEvalData,
  type AutoAttackEvalOptions,
  type AutoAttackSummary,
} from '../../run/evaluate-autoattack';
import { EVAL_FOLDER_PATTERN, checkEvalName, evalFolder } from '../../run/eval-folder';
import { validateSpec } from '../../config/spec';
import { CheckpointStore } from '../../store/checkpoint-store';
import { createFolder, RunFolder } from '../../store/run-folder';
import { acquireLock } from '../../store/run-lock';
import { createSource } from '../../config/builtins';
import { parseNumberText } from '../../config/dotted-path';
import { formatEvalProgress, formatSeconds } from '../../logs/progress';

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
  keyMap?: string;
}

interface Target {
  model: Model;
  data: AutoAttackEvalData;
  threat: ThreatModel;
  checkpoint: string;
  outRoot: string;
}

function parseEps(text: string): number {
  const v = parseNumberText(text) ?? NaN;
  if (!Number.isFinite(v)) throw new AtflowError('ARGUMENT', `--eps: '${text}' is not a number or a fraction such as 8/255`, { eps: text });
  return v;
}

function positiveInt(flag: string, text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1)
    throw new AtflowError('ARGUMENT', `${flag} must be an integer ≥ 1, got '${text}'`, { flag, value: text });
  return v;
}

function nonNegativeInt(flag: string, text: string): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isInteger(v) || v < 0)
    throw new AtflowError('ARGUMENT', `${flag} must be an integer ≥ 0, got '${text}'`, { flag, value: text });
  return v;
}

/**
 * `--eps` / `--norm` over `base` (a run's own threat model), or alone for a bare weights file: one
 * threat model, built and checked by threatModel (a norm changed without --eps is refused, naming both).
 */
function flagsThreat(o: EvalOptions, base?: ThreatModel): ThreatModel {
  if (base && o.eps === undefined && o.norm === undefined) return base;
  return threatModel(
    { ...(o.norm !== undefined ? { norm: o.norm as 'linf' | 'l2' } : {}), ...(o.eps !== undefined ? { eps: parseEps(o.eps) } : {}) },
    { base, origin: 'flags' },
  );
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

/** --key-map: inline JSON (`'{"backbone.*": "*"}'`) or a JSON file; renames from the file's names to the model's. */
function parseKeyMap(text: string): KeyMap {
  const inline = /^\s*[[{]/.test(text);
  let raw: string;
  try {
    raw = inline ? text : fs.readFileSync(text, 'utf8');
  } catch (e) {
    throw new AtflowError(
      'ARGUMENT',
      `--key-map: cannot read ${text} (${(e as Error).message}); pass a JSON file or inline JSON such as '{"backbone.*": "*"}'`,
      { keyMap: text },
    );
  }
  let map: unknown;
  try {
    map = JSON.parse(raw.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new AtflowError('ARGUMENT', `--key-map${inline ? '' : ` ${text}`}: not valid JSON (${(e as Error).message})`, { keyMap: text });
  }
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new AtflowError(
      'ARGUMENT',
      `--key-map${inline ? '' : ` ${text}`}: expected a JSON object {"name in the file": "name in the model" | null}`,
      { keyMap: text },
    );
  }
  return checkKeyMap(map as Record<string, unknown>);
}

function fromRunDir(runDir: string, o: EvalOptions, n: number): Target {
  if (o.keyMap !== undefined)
    throw new AtflowError(
      'ARGUMENT',
      `--key-map is for a weights file; ${runDir} is a run folder, whose checkpoints already use the model's names`,
      { runDir },
    );
  const folder = new RunFolder(runDir);
  folder.checkShape();
  const doc = folder.readSpec();
  const spec = validateSpec(folder.readConfig(), folder.specFile);
  // the run's threat model (its evaluation's norm and ε), with --eps / --norm over it: checked before anything loads
  const threat = flagsThreat(o, threatModelOf(spec));
  // the plugins the run recorded in spec.json, and any --plugin
  const parts = buildRun(spec, registryForRun(folder.specFile, doc.spec ?? {}, spec, o.plugin));
  const { file, label } = checkpointFile(new CheckpointStore(folder), o.checkpoint);
  loadWeights(parts.model, file);
  const split = o.split as 'test' | 'train';
  const data = take(parts.source, split, n, split === 'train' ? parts.labels.labelsUsed : undefined);
  return { model: parts.model, data, threat, checkpoint: label, outRoot: o.out ?? runDir };
}

function fromWeights(file: string, o: EvalOptions, n: number, keyMap: KeyMap | undefined): Target {
  if (o.eps === undefined) throw new AtflowError('ARGUMENT', `evaluating a bare weights file needs --eps (e.g. 8/255 or 0.3)`, { file });
  const threat = flagsThreat(o);
  const meta = readSafetensorsHeader(file).metadata ?? {};
  const modelName = o.model ?? meta['atflow.model'];
  if (!modelName)
    throw new AtflowError(
      'ARGUMENT',
      `${file} does not say which model it holds (no atflow.model metadata): pass --model (e.g. cnn-small)`,
      { file },
    );
  const datasetName = o.dataset;
  if (!datasetName) throw new AtflowError('ARGUMENT', `evaluating a bare weights file needs --dataset (e.g. mnist, cifar10)`, { file });
  const source = createSource(datasetName, {});
  const classes =
    o.classes !== undefined
      ? positiveInt('--classes', o.classes)
      : meta['atflow.num_classes']
        ? Number(meta['atflow.num_classes'])
        : source.info.numClasses;
  if (classes !== source.info.numClasses) {
    throw new AtflowError(
      'ARGUMENT',
      `${file} holds a ${classes}-class model but dataset '${datasetName}' has ${source.info.numClasses} classes`,
      { file, classes },
    );
  }
  const model = createModel(modelName, { numClasses: classes, inputShape: source.info.imageShape as [number, number, number], seed: 0 });
  for (const note of loadWeights(model, file, { keyMap }).notes) process.stderr.write(`note: ${note}\n`);
  const data = take(source, o.split as 'test' | 'train', n);
  return { model, data, threat, checkpoint: path.basename(file), outRoot: o.out ?? path.dirname(file) };
}

export function register(program: Command): void {
  program
    .command('eval')
    .description(
      "AutoAttack (standard: APGD-CE → APGD-T → FAB-T → Square) on a run's " +
        'checkpoint or a weights file; writes eval/<name>/robustness.parquet ' +
        'and summary.json',
    )
    .argument('<target>', 'a run folder (runs/<run_id>) or a .safetensors weights file')
    .option('--checkpoint <which>', 'best | final | epoch-N (run folders)', 'best')
    .option(
      '--plugin <module[#export]>',
      "a plugin module the run's operators came from (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--attacks <list>', 'standard | rand | a comma-separated list of apgd-ce, apgd-dlr, apgd-t, fab-t, square', 'standard')
    .option('--n <count>', 'examples (the first n of the split)', '10000')
    .option('--eps <eps>', "ε on the [0, 1] scale, e.g. 8/255 (default: the run's threat model, i.e. its evaluation's ε)")
    .option('--norm <norm>', "linf | l2 (default: the run's threat model; another norm needs --eps)")
    .option('--split <split>', 'test | train (train: against the labels the run trained on)', 'test')
    .option('--resume', 'continue an interrupted evaluation from eval/<name>/state.jsonl')
    .option(
      '--name <name>',
      `folder name under eval/ (default: ${EVAL_FOLDER_PATTERN}, plus -<hash> when that folder holds another budget, seed or batch size)`,
    )
    .option('--out <dir>', 'where eval/ goes (default: the run folder, or next to a weights file)')
    .option('--batch-size <n>', 'examples attacked together', '500')
    .option('--seed <n>', 'seed of the attacks (an integer ≥ 0)', '0')
    .option('--quiet', 'no progress line')
    .option('--backend <name>', 'tensorflow | wasm | cpu (default: the fastest available)')
    .option('--model <name>', 'model of a weights file without atflow metadata')
    .option('--dataset <name>', 'dataset of a weights file (mnist, cifar10, ...)')
    .option('--classes <k>', 'classes of a weights file without atflow metadata')
    .option(
      '--key-map <json|file>',
      'rename tensors of a weights file: \'{"fc.weight": "linear.weight", ' +
        '"backbone.*": "*", "n_averaged": null}\' or a JSON file (module., ' +
        '_orig_mod., model. prefixes are stripped already)',
    )
    .option('--apgd-steps <n>', 'APGD iterations (default 100)')
    .option('--targets <n>', 'APGD-T / FAB-T target classes (default 9)')
    .option('--fab-steps <n>', 'FAB-T iterations (default 100)')
    .option('--square-queries <n>', 'Square queries (default 5000)')
    .action(async (target: string, o: EvalOptions) => {
      // the flags are checked before the backend starts
      const keyMap = o.keyMap !== undefined ? parseKeyMap(o.keyMap) : undefined;
      if (o.norm !== undefined && o.norm !== 'linf' && o.norm !== 'l2')
        throw new AtflowError('ARGUMENT', `--norm must be linf or l2, got '${o.norm}'`, { norm: o.norm });
      if (o.split !== 'test' && o.split !== 'train')
        throw new AtflowError('ARGUMENT', `--split must be test or train, got '${o.split}'`, { split: o.split });
      const n = positiveInt('--n', o.n);
      const seed = nonNegativeInt('--seed', o.seed);
      const batchSize = positiveInt('--batch-size', o.batchSize);
      if (o.name !== undefined) checkEvalName(o.name);
      if (o.eps !== undefined) parseEps(o.eps);
      await initBackend(o.backend as Parameters<typeof initBackend>[0]);
      if (!fs.existsSync(target)) throw new AtflowError('DATA_FILE', `${target} does not exist`, { target });
      const isRun = fs.statSync(target).isDirectory();
      const t = isRun ? fromRunDir(target, o, n) : fromWeights(target, o, n, keyMap);
      const attacks =
        o.attacks === 'standard' || o.attacks === 'rand'
          ? o.attacks
          : o.attacks
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean);
      const budget = {
        ...(o.apgdSteps ? { apgdSteps: positiveInt('--apgd-steps', o.apgdSteps) } : {}),
        ...(o.targets ? { targets: positiveInt('--targets', o.targets) } : {}),
        ...(o.fabSteps ? { fabSteps: positiveInt('--fab-steps', o.fabSteps) } : {}),
        ...(o.squareQueries ? { squareQueries: positiveInt('--square-queries', o.squareQueries) } : {}),
      };
      const split = o.split as 'test' | 'train';
      const settings: AutoAttackEvalOptions = {
        threat: t.threat,
        attacks,
        budget,
        batchSize,
        seed,
        checkpoint: t.checkpoint,
        split,
        resume: !!o.resume,
      };
      const evaluated = t.data.labels.length;
      const outDir = evalFolder(t.outRoot, {
        name: o.name,
        key: { checkpoint: isRun ? o.checkpoint : path.basename(target, '.safetensors'), attacks, threat: t.threat, split, n: evaluated },
        header: autoAttackHeader(settings, t.model.numClasses, evaluated),
        resume: !!o.resume,
      });
      // one writer per evaluation folder: a second `atflow eval` into it is refused, naming this one
      try {
        createFolder(outDir, 'the evaluation folder');
      } catch (e) {
        if (e instanceof AtflowError && o.out === undefined)
          throw new AtflowError(e.code, `${e.message}; --out <dir> writes the evaluation elsewhere`, e.details);
        throw e;
      }
      const lock = acquireLock(outDir, { command: 'atflow eval' });
      const tty = process.stderr.isTTY;
      let summary: AutoAttackSummary;
      try {
        summary = await evaluateAutoAttack(t.model, t.data, outDir, {
          ...settings,
          onProgress: o.quiet
            ? undefined
            : (p) => {
                // a TTY rewrites one line (clearing what a longer line left); elsewhere a line per event
                const line = formatEvalProgress(p);
                process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
              },
        });
      } finally {
        lock.release();
      }
      if (tty && !o.quiet) process.stderr.write('\n');
      t.model.dispose();
      for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
      const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
      process.stdout.write(
        `${summary.checkpoint}, ${summary.split} n=${summary.n}, ${summary.norm} ε=${summary.eps}: clean ${pct(summary.clean_acc)}\n`,
      );
      for (const [stage, acc] of Object.entries(summary.robust_acc_after)) {
        const time = summary.stage_time[stage];
        process.stdout.write(
          `  after ${stage.padEnd(8)} ${pct(acc).padStart(7)}  (${time.attacked} attacked, ${formatSeconds(time.seconds)})\n`,
        );
      }
      process.stdout.write(
        `  AutoAttack (${summary.attacks.join(' → ')}): ${pct(summary.robust_acc)} in ${formatSeconds(summary.seconds)}\n${outDir}\n`,
      );
    });
}
