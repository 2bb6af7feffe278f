import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { AtflowError } from '../core/errors';
import { faultPoint } from '../core/fault-injection';
import { fsyncDir, writeFileDurable } from '../core/durable-file';
import type { Model } from '../core/model';
import type { EpochRecord } from '../core/records';
import { saveWeights, loadWeights, type WeightsSnapshot } from '../models/checkpoint';
import { readSafetensorsFile, writeSafetensorsFile, type SafetensorsTensor } from '../models/safetensors';
import { CHECKPOINT_FILES, checkpointDirName, removeEntry, RunFolder } from './run-folder';

/**
 * Crash-safe checkpoints. One checkpoint = one folder `checkpoints/epoch-NNNN/` holding
 *   model.safetensors   weights and BatchNorm buffers (PyTorch state_dict names, see docs/models.md)
 *   state.safetensors   optimizer momentum buffers, the TE buffer
 *   state.json          epoch, step counters, every epoch record, scalar state (schema: STATE_SCHEMA)
 *   best.safetensors    the best epoch's weights (state.json `best_epoch`; absent while no epoch was evaluated)
 * Every file is written durably (core/durable-file.ts) into a temp folder, which is fsynced and renamed
 * into place; only then does `LATEST` (written the same way) name it, and only then is the previous
 * checkpoint removed. A crash or a power loss at any point leaves LATEST naming a complete checkpoint.
 * Paths and file names come from the run folder (store/run-folder.ts).
 */
export interface CheckpointState {
  /** Last completed epoch. */
  readonly epoch: number;
  /** Optimizer steps taken so far. */
  readonly steps: number;
  /** Anything JSON-serialisable: the epoch records, detector phase, schedule, counters (see STATE_SCHEMA). */
  readonly json: Record<string, unknown>;
  /** Named float/int arrays (optimizer slots, TE buffer, detector state). */
  readonly arrays: readonly SafetensorsTensor[];
  /**
   * The best epoch so far and its weights, saved with the checkpoint (never apart from it: the file
   * and the records that name its epoch are one commit). null: no epoch evaluated yet.
   */
  readonly best?: BestWeights | null;
}

/** The best epoch's weights, kept in host memory from that epoch until a checkpoint writes them. */
export interface BestWeights {
  readonly epoch: number;
  readonly weights: WeightsSnapshot;
}

/** The epoch a weights file says it holds (its `epoch` metadata), NaN when it says none. */
function fileEpoch(metadata: Readonly<Record<string, string>> | undefined): number {
  const v = metadata?.epoch;
  return v === undefined ? NaN : Number(v);
}

/** An epoch record as state.json holds it: NaN fields (not evaluated) are null there. */
const RECORD_SCHEMA = z
  .object({ epoch: z.number().int().min(1), best_epoch: z.number().int().min(0) })
  .catchall(z.union([z.number(), z.null(), z.string(), z.boolean()]));

/**
 * What a checkpoint's state.json must hold to be resumed from. Extra keys are kept (a plugin's
 * state); the ones the run reads are checked, so a damaged file is refused naming the field instead of
 * resuming with wrong records.
 */
export const STATE_SCHEMA = z
  .object({
    epoch: z.number().int().min(1),
    steps: z.number().int().min(0),
    runId: z.string().optional(),
    workers: z.number().int().min(1).optional(),
    epochs: z.array(RECORD_SCHEMA),
    wallMs: z.number().min(0).optional(),
    trained_on: z.array(z.string()).optional(),
    sgd: z.object({ steps: z.number().int().min(0), names: z.array(z.string()), shapes: z.array(z.array(z.number().int().min(0))) }),
    te: z.record(z.unknown()).nullable().optional(),
    detectors: z.object({ train: z.record(z.unknown()).optional(), eval: z.record(z.unknown()).optional() }).optional(),
    /** The epoch best.safetensors holds (0: none evaluated); absent in checkpoints that kept the best weights apart. */
    best_epoch: z.number().int().min(0).optional(),
  })
  .passthrough()
  .superRefine((s, ctx) => {
    if (s.sgd.names.length !== s.sgd.shapes.length)
      ctx.addIssue({ code: 'custom', path: ['sgd', 'shapes'], message: `${s.sgd.shapes.length} shapes for ${s.sgd.names.length} names` });
    // every epoch 1 … epoch, in order: the history the best epoch and the summary are computed from
    const wrong = s.epochs.findIndex((r, i) => r.epoch !== i + 1);
    if (wrong >= 0)
      ctx.addIssue({
        code: 'custom',
        path: ['epochs', wrong, 'epoch'],
        message: `record ${wrong} is epoch ${s.epochs[wrong].epoch}, expected ${wrong + 1}`,
      });
    else if (s.epochs.length !== s.epoch)
      ctx.addIssue({ code: 'custom', path: ['epochs'], message: `${s.epochs.length} records for a checkpoint of epoch ${s.epoch}` });
    s.epochs.forEach((r, i) => {
      if (r.best_epoch > r.epoch)
        ctx.addIssue({
          code: 'custom',
          path: ['epochs', i, 'best_epoch'],
          message: `best_epoch ${r.best_epoch} is after the record's epoch ${r.epoch}`,
        });
    });
    if (s.best_epoch !== undefined && s.best_epoch > s.epoch)
      ctx.addIssue({
        code: 'custom',
        path: ['best_epoch'],
        message: `best_epoch ${s.best_epoch} is after the checkpoint's epoch ${s.epoch}`,
      });
  });

export type CheckpointJson = z.infer<typeof STATE_SCHEMA>;

export class CheckpointStore {
  readonly folder: RunFolder;
  readonly dir: string;

  constructor(folder: RunFolder | string) {
    this.folder = typeof folder === 'string' ? new RunFolder(folder) : folder;
    this.dir = this.folder.checkpointsDir;
  }

  get runDir(): string {
    return this.folder.dir;
  }

  /** `checkpoints/epoch-NNNN/`. */
  checkpointDir(epoch: number): string {
    return this.folder.checkpointDir(epoch);
  }

  /** The epochs whose checkpoint folder is kept (checkpoint.keep = 'all' keeps every one), ascending. */
  keptEpochs(): number[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs
      .readdirSync(this.dir)
      .map((f) => /^epoch-(\d+)$/.exec(f))
      .filter((m): m is RegExpExecArray => !!m && fs.existsSync(path.join(this.dir, m[0], CHECKPOINT_FILES.model)))
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  /** The epoch of the last complete checkpoint, or null. LATEST holds a name, never a path. */
  latestEpoch(): number | null {
    const latest = this.folder.latestFile;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(latest);
    } catch {
      return null;
    }
    if (!st.isFile()) {
      throw new AtflowError(
        'RESUME',
        `${latest} is ${st.isDirectory() ? 'a folder' : 'not a regular file'}, ` +
          `expected a file naming the last checkpoint (e.g. epoch-0002): the run ` +
          `folder is damaged`,
        { file: latest },
      );
    }
    const name = fs.readFileSync(latest, 'utf8').trim();
    const m = /^epoch-(\d+)$/.exec(name);
    if (!m || !fs.existsSync(path.join(this.dir, name, CHECKPOINT_FILES.json))) {
      throw new AtflowError('RESUME', `${latest}: points at '${name.slice(0, 80)}', which is not a complete checkpoint folder`, {
        file: latest,
      });
    }
    return Number(m[1]);
  }

  /** `keepPrevious`: leave the earlier checkpoint folders in place (checkpoint.keep = 'all'). */
  save(model: Model, state: CheckpointState, keepPrevious = false): string {
    const previous = this.latestEpochOrNull();
    const final = this.checkpointDir(state.epoch);
    const tmp = path.join(this.dir, `.tmp-${checkpointDirName(state.epoch)}-${process.pid}`);
    const best = state.best ?? null;
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      removeEntry(tmp);
      fs.mkdirSync(tmp);
      saveWeights(model, path.join(tmp, CHECKPOINT_FILES.model), { epoch: String(state.epoch) });
      writeSafetensorsFile(path.join(tmp, CHECKPOINT_FILES.state), state.arrays, { epoch: String(state.epoch) });
      if (best)
        writeSafetensorsFile(path.join(tmp, CHECKPOINT_FILES.best), best.weights.tensors, {
          ...best.weights.metadata,
          epoch: String(best.epoch),
        });
      writeFileDurable(
        path.join(tmp, CHECKPOINT_FILES.json),
        JSON.stringify({ epoch: state.epoch, steps: state.steps, ...state.json, best_epoch: best?.epoch ?? 0 }, null, 1) + '\n',
      );
      fsyncDir(tmp);
    } catch (e) {
      // disk full, read-only folder: the previous checkpoint and LATEST are untouched
      try {
        removeEntry(tmp);
      } catch {
        // a temp folder left behind is removed at the next start
      }
      const kept = previous === null ? 'no earlier checkpoint exists' : `the previous checkpoint ${checkpointDirName(previous)} is kept`;
      throw new AtflowError('IO', `cannot write checkpoint ${final}: ${(e as Error).message}; ${kept}`, { path: final });
    }
    faultPoint('checkpoint-write');
    this.folder.heldLock?.assertHeld();
    removeEntry(final);
    fs.renameSync(tmp, final);
    fsyncDir(this.dir);
    writeFileDurable(this.folder.latestFile, checkpointDirName(state.epoch) + '\n');
    if (!keepPrevious && previous !== null && previous !== state.epoch) removeEntry(this.checkpointDir(previous));
    return final;
  }

  private latestEpochOrNull(): number | null {
    try {
      return this.latestEpoch();
    } catch {
      return null;
    }
  }

  /** Loads the latest checkpoint into `model` and returns its state (checked: see readState), the best epoch's weights included. */
  load(model: Model): CheckpointState | null {
    const epoch = this.latestEpoch();
    if (epoch === null) return null;
    const json = this.readState(epoch);
    const bestFile = this.bestFileOf(epoch, json);
    const dir = this.checkpointDir(epoch);
    loadWeights(model, path.join(dir, CHECKPOINT_FILES.model));
    const arrays = [...readSafetensorsFile(path.join(dir, CHECKPOINT_FILES.state)).tensors.values()];
    let best: BestWeights | null = null;
    if (bestFile) {
      const f = readSafetensorsFile(bestFile.file);
      best = { epoch: bestFile.epoch, weights: { tensors: [...f.tensors.values()], metadata: f.metadata ?? {} } };
    }
    return { epoch, steps: json.steps, json, arrays, best };
  }

  /** The latest checkpoint's state.json (checked), without loading anything (null when there is no checkpoint). */
  latestState(): CheckpointJson | null {
    const epoch = this.latestEpoch();
    return epoch === null ? null : this.readState(epoch);
  }

  /**
   * The best epoch's weights file of the latest checkpoint and the epoch it holds, checked against the
   * epoch its records name; null when no epoch was evaluated (best_epoch 0). A missing file, or one that
   * holds another epoch, is an error: never another checkpoint's weights under the label "best".
   */
  bestWeightsFile(): { readonly file: string; readonly epoch: number } | null {
    const epoch = this.latestEpoch();
    if (epoch === null)
      throw new AtflowError('DATA_FILE', `${this.runDir}: no checkpoint (checkpoints/LATEST is missing), so no best epoch's weights`, {
        runDir: this.runDir,
      });
    return this.bestFileOf(epoch, this.readState(epoch));
  }

  /**
   * The weights file of a checkpoint: 'final' (LATEST's model), 'best' (bestWeightsFile) or an epoch
   * number. Errors name what is missing and what is kept.
   */
  weightsFile(which: 'final' | 'best' | number): { file: string; epoch: number; label: string } {
    if (which === 'best') {
      const best = this.bestWeightsFile();
      if (!best)
        throw new AtflowError('DATA_FILE', `${this.runDir}: no best checkpoint: no epoch has been evaluated yet (use --checkpoint final)`, {
          runDir: this.runDir,
        });
      return { ...best, label: `best (epoch ${best.epoch})` };
    }
    if (which === 'final') {
      const latest = this.latestEpoch();
      if (latest === null)
        throw new AtflowError(
          'DATA_FILE',
          `${this.runDir}: no checkpoint (checkpoints/LATEST is missing); was the run started with checkpoints disabled?`,
          { runDir: this.runDir },
        );
      return { file: path.join(this.checkpointDir(latest), CHECKPOINT_FILES.model), epoch: latest, label: `final (epoch ${latest})` };
    }
    const file = path.join(this.checkpointDir(which), CHECKPOINT_FILES.model);
    if (!fs.existsSync(file)) {
      const kept = this.keptEpochs();
      throw new AtflowError(
        'DATA_FILE',
        `${file} does not exist; kept checkpoints: ${kept.map(checkpointDirName).join(', ') || 'none'} ` +
          `(checkpoint.keep = 'all' keeps every epoch)`,
        { file },
      );
    }
    return { file, epoch: which, label: `epoch ${which}` };
  }

  /** state.json of the checkpoint of `epoch`, checked against STATE_SCHEMA; errors name the file and the field. */
  readState(epoch: number): CheckpointJson {
    const file = path.join(this.checkpointDir(epoch), CHECKPOINT_FILES.json);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new AtflowError('RESUME', `${file}: unreadable checkpoint state (${(e as Error).message})`, { file });
    }
    if (!json || typeof json !== 'object' || Array.isArray(json))
      throw new AtflowError('RESUME', `${file}: unreadable checkpoint state (not a JSON object)`, { file });
    const sgd = json.sgd as { names?: unknown; shapes?: unknown } | undefined;
    if (!sgd || !Array.isArray(sgd.names) || !Array.isArray(sgd.shapes)) {
      throw new AtflowError('RESUME', `${file}: no optimizer state ('sgd'); the checkpoint is damaged`, { file });
    }
    const parsed = STATE_SCHEMA.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 4).map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
      throw new AtflowError(
        'RESUME',
        `${file}: damaged checkpoint state: ${issues.join('; ')}${parsed.error.issues.length > 4 ? '; ...' : ''}`,
        { file, issues: parsed.error.issues },
      );
    }
    if (parsed.data.epoch !== epoch)
      throw new AtflowError(
        'RESUME',
        `${file}: holds epoch ${parsed.data.epoch}, but its folder is ${checkpointDirName(epoch)}; the checkpoint is damaged`,
        { file },
      );
    return parsed.data;
  }

  /**
   * Where checkpoint `epoch` keeps its best weights: best.safetensors in its folder (state.json
   * `best_epoch`), or, in run folders written before the best weights moved into the checkpoint,
   * checkpoints/best.safetensors, named by the records' last `best_epoch`.
   */
  private bestFileOf(epoch: number, json: CheckpointJson): { file: string; epoch: number } | null {
    const stateFile = path.join(this.checkpointDir(epoch), CHECKPOINT_FILES.json);
    const legacy = json.best_epoch === undefined;
    const records = json.epochs;
    const bestEpoch = legacy ? (records.length ? records[records.length - 1].best_epoch : 0) : (json.best_epoch as number);
    if (!(bestEpoch > 0)) return null;
    const file = legacy ? path.join(this.dir, CHECKPOINT_FILES.best) : path.join(this.checkpointDir(epoch), CHECKPOINT_FILES.best);
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(file);
    } catch {
      st = null;
    }
    if (!st) {
      throw new AtflowError(
        'DATA_FILE',
        `${file} is missing: ${stateFile} names epoch ${bestEpoch} as the best, and its weights are kept nowhere else`,
        { file, bestEpoch },
      );
    }
    if (!st.isFile()) {
      throw new AtflowError(
        'DATA_FILE',
        `${file} is ${st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a folder' : 'not a regular file'}, ` +
          `expected the best epoch's weights file: the checkpoint is damaged`,
        { file },
      );
    }
    const holds = fileEpoch(readSafetensorsFile(file).metadata ?? undefined);
    if (holds !== bestEpoch) {
      // an older atflow wrote the best weights apart from the checkpoint, so a stop could leave them ahead of it
      const why = legacy
        ? '; this run folder is from an atflow that saved the best weights apart ' +
          'from its checkpoints, and they are lost: --rerun trains it again'
        : '';
      throw new AtflowError(
        'DATA_FILE',
        `${file} holds the weights of epoch ` +
          `${Number.isNaN(holds) ? '(none stated)' : holds}, but ${stateFile} ` +
          `names epoch ${bestEpoch} as the best: the file does not belong to ` +
          `these records${why}`,
        { file, bestEpoch, fileEpoch: holds },
      );
    }
    return { file, epoch: bestEpoch };
  }
}

/**
 * The epoch records a checkpoint's state.json holds (`epochs`), as the run made them: JSON wrote the
 * NaN of unevaluated fields (eval.every > 1, no training-set pass) as null; they are NaN again here.
 */
export function checkpointEpochs(json: Record<string, unknown>): EpochRecord[] {
  const raw = Array.isArray(json.epochs) ? (json.epochs as Record<string, unknown>[]) : [];
  return raw.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? NaN : v])) as unknown as EpochRecord);
}
