import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { AtflowError } from '../core/errors';
import { faultPoint } from '../core/fault-injection';
import { fsyncDir, isTempName, writeFileDurable } from '../core/durable-file';
import type { Model } from '../core/model';
import type { EpochRecord } from '../core/records';
import { loadStateDict, loadWeights, saveWeights, weightsTensors } from '../models/checkpoint';
import { readSafetensorsFile, writeSafetensorsFile, type SafetensorsTensor } from '../models/safetensors';
import { removeEntry, RunFolder } from './run-folder';

/**
 * Crash-safe checkpoints. One checkpoint = one folder `checkpoints/epoch-NNNN/` holding
 *   model.safetensors   weights and BatchNorm buffers (PyTorch state_dict names, see docs/models.md)
 *   state.safetensors   optimizer momentum buffers, the TE buffer
 *   state.json          epoch, step counters, every epoch record, scalar state (schema: STATE_SCHEMA)
 *   best.safetensors    the best epoch's weights (metadata `epoch`: which epoch they are), when an
 *                       epoch has been evaluated: saved WITH the checkpoint, so the file and the records
 *                       that name the best epoch can never disagree (a hard link to model.safetensors
 *                       when the checkpoint's epoch is the best)
 * Every file is written durably (core/durable-file.ts) into a temp folder, which is fsynced and renamed
 * into place; only then does `LATEST` (written the same way) name it, and only then is the previous
 * checkpoint removed. A crash or a power loss at any point leaves LATEST naming a complete checkpoint.
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
}

/** A host copy of the best epoch's weights, held between its epoch and the next checkpoint. */
interface HeldBest {
  readonly epoch: number;
  readonly tensors: SafetensorsTensor[];
  readonly metadata: Record<string, string>;
}

const FILES = { model: 'model.safetensors', state: 'state.safetensors', json: 'state.json', best: 'best.safetensors', latest: 'LATEST' } as const;

function epochDirName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`;
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
    sgd: z.object({ steps: z.number().int().min(0), names: z.array(z.string()), shapes: z.array(z.array(z.number().int().min(0))) }),
    te: z.record(z.unknown()).nullable().optional(),
    detectors: z.object({ train: z.record(z.unknown()).optional(), eval: z.record(z.unknown()).optional() }).optional(),
  })
  .passthrough()
  .superRefine((s, ctx) => {
    if (s.sgd.names.length !== s.sgd.shapes.length) ctx.addIssue({ code: 'custom', path: ['sgd', 'shapes'], message: `${s.sgd.shapes.length} shapes for ${s.sgd.names.length} names` });
    // every epoch 1 … epoch, in order: the history the best epoch and the summary are computed from
    const wrong = s.epochs.findIndex((r, i) => r.epoch !== i + 1);
    if (wrong >= 0) ctx.addIssue({ code: 'custom', path: ['epochs', wrong, 'epoch'], message: `record ${wrong} is epoch ${s.epochs[wrong].epoch}, expected ${wrong + 1}` });
    else if (s.epochs.length !== s.epoch) ctx.addIssue({ code: 'custom', path: ['epochs'], message: `${s.epochs.length} records for a checkpoint of epoch ${s.epoch}` });
    s.epochs.forEach((r, i) => {
      if (r.best_epoch > r.epoch) ctx.addIssue({ code: 'custom', path: ['epochs', i, 'best_epoch'], message: `best_epoch ${r.best_epoch} is after the record's epoch ${r.epoch}` });
    });
  });

export type CheckpointJson = z.infer<typeof STATE_SCHEMA>;

/** The best epoch the records name (the last record's best_epoch; 0: none evaluated yet). */
function bestEpochOf(json: Record<string, unknown>): number {
  const epochs = Array.isArray(json.epochs) ? (json.epochs as { best_epoch?: unknown }[]) : [];
  const last = epochs[epochs.length - 1];
  return last && Number.isInteger(last.best_epoch) ? (last.best_epoch as number) : 0;
}

function epochOfFile(file: string): number | null {
  const e = readSafetensorsFile(file).metadata?.epoch;
  return e !== undefined && /^\d+$/.test(e) ? Number(e) : null;
}

/** A hard link (no copy; durable with its folder's fsync); a durable copy where links are not supported. */
function linkOrCopy(from: string, to: string): void {
  try {
    fs.linkSync(from, to);
  } catch {
    writeFileDurable(to, fs.readFileSync(from));
  }
}

export class CheckpointStore {
  readonly folder: RunFolder;
  readonly dir: string;
  private best: HeldBest | null = null;

  constructor(folder: RunFolder | string) {
    this.folder = typeof folder === 'string' ? new RunFolder(folder) : folder;
    this.dir = this.folder.checkpointsDir;
  }

  get runDir(): string {
    return this.folder.dir;
  }

  /** `checkpoints/epoch-NNNN/`. */
  checkpointDir(epoch: number): string {
    return path.join(this.dir, epochDirName(epoch));
  }

  /** The epochs whose checkpoint folder is kept (checkpoint.keep = 'all' keeps every one), ascending. */
  keptEpochs(): number[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs
      .readdirSync(this.dir)
      .map((f) => /^epoch-(\d+)$/.exec(f))
      .filter((m): m is RegExpExecArray => !!m && fs.existsSync(path.join(this.dir, m[0], FILES.model)))
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  /** The epoch of the last complete checkpoint, or null. LATEST holds a name, never a path. */
  latestEpoch(): number | null {
    const latest = path.join(this.dir, FILES.latest);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(latest);
    } catch {
      return null;
    }
    if (!st.isFile()) {
      throw new AtflowError(
        'RESUME',
        `${latest} is ${st.isDirectory() ? 'a folder' : 'not a regular file'}, expected a file naming the last checkpoint (e.g. epoch-0002): the run folder is damaged`,
        { file: latest },
      );
    }
    const name = fs.readFileSync(latest, 'utf8').trim();
    const m = /^epoch-(\d+)$/.exec(name);
    if (!m || !fs.existsSync(path.join(this.dir, name, FILES.json))) {
      throw new AtflowError(
        'RESUME',
        `${latest}: points at '${name.slice(0, 80)}', which is not a complete checkpoint folder`,
        { file: latest },
      );
    }
    return Number(m[1]);
  }

  /**
   * Holds a host copy of the model's weights as the best epoch's until the next save() writes them
   * with the checkpoint (trackBest calls it at every new best). Nothing is written here: a run killed
   * before the next checkpoint loses this epoch's records too, and the resumed run finds it again.
   */
  holdBest(model: Model, epoch: number): void {
    const { tensors, metadata } = weightsTensors(model, { epoch: String(epoch) });
    this.best = { epoch, tensors, metadata };
  }

  /** `keepPrevious`: leave the earlier checkpoint folders in place (checkpoint.keep = 'all'). */
  save(model: Model, state: CheckpointState, keepPrevious = false): string {
    const previous = this.latestEpochOrNull();
    const final = this.checkpointDir(state.epoch);
    const tmp = path.join(this.dir, `.tmp-${epochDirName(state.epoch)}-${process.pid}`);
    const bestEpoch = bestEpochOf(state.json);
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      removeEntry(tmp);
      fs.mkdirSync(tmp);
      saveWeights(model, path.join(tmp, FILES.model), { epoch: String(state.epoch) });
      writeSafetensorsFile(path.join(tmp, FILES.state), state.arrays, { epoch: String(state.epoch) });
      writeFileDurable(path.join(tmp, FILES.json), JSON.stringify({ epoch: state.epoch, steps: state.steps, ...state.json }, null, 1) + '\n');
      if (bestEpoch > 0) this.writeBest(path.join(tmp, FILES.best), bestEpoch, state.epoch, previous);
      fsyncDir(tmp);
    } catch (e) {
      // disk full, read-only folder: the previous checkpoint and LATEST are untouched
      try {
        removeEntry(tmp);
      } catch {
        // a temp folder left behind is removed at the next start
      }
      const kept = previous === null ? 'no earlier checkpoint exists' : `the previous checkpoint ${epochDirName(previous)} is kept`;
      throw new AtflowError('IO', `cannot write checkpoint ${final}: ${(e as Error).message}; ${kept}`, { path: final });
    }
    faultPoint('checkpoint-write');
    this.folder.heldLock?.assertHeld();
    removeEntry(final);
    fs.renameSync(tmp, final);
    fsyncDir(this.dir);
    writeFileDurable(path.join(this.dir, FILES.latest), epochDirName(state.epoch) + '\n');
    if (!keepPrevious && previous !== null && previous !== state.epoch) removeEntry(this.checkpointDir(previous));
    if (this.best && this.best.epoch <= state.epoch) this.best = null;
    return final;
  }

  /** best.safetensors of a checkpoint in the making: the weights of `bestEpoch`, from wherever they are. */
  private writeBest(file: string, bestEpoch: number, epoch: number, previous: number | null): void {
    const dir = path.dirname(file);
    if (bestEpoch === epoch) return linkOrCopy(path.join(dir, FILES.model), file);
    if (this.best?.epoch === bestEpoch) return writeSafetensorsFile(file, this.best.tensors, this.best.metadata);
    // an earlier checkpoint's (or, in run folders of older versions, checkpoints/best.safetensors)
    const candidates = [...(previous !== null ? [path.join(this.checkpointDir(previous), FILES.best)] : []), path.join(this.dir, FILES.best)];
    for (const c of candidates) if (fs.existsSync(c) && epochOfFile(c) === bestEpoch) return linkOrCopy(c, file);
    throw new AtflowError(
      'RESUME',
      `the weights of the best epoch ${bestEpoch} are neither held nor in the previous checkpoint (${candidates.join(', ') || 'none'}); the run folder is damaged`,
      { bestEpoch },
    );
  }

  private latestEpochOrNull(): number | null {
    try {
      return this.latestEpoch();
    } catch {
      return null;
    }
  }

  /** state.json of the checkpoint of `epoch`, checked against STATE_SCHEMA; errors name the file and the field. */
  readState(epoch: number): CheckpointJson {
    const file = path.join(this.checkpointDir(epoch), FILES.json);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new AtflowError('RESUME', `${file}: unreadable checkpoint state (${(e as Error).message})`, { file });
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new AtflowError(
      'RESUME',
      `${file}: unreadable checkpoint state (not a JSON object)`,
      { file },
    );
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
    if (parsed.data.epoch !== epoch) throw new AtflowError(
      'RESUME',
      `${file}: holds epoch ${parsed.data.epoch}, but its folder is ${epochDirName(epoch)}; the checkpoint is damaged`,
      { file },
    );
    return parsed.data;
  }

  /** Loads the latest checkpoint into `model` and returns its state (checked: see readState). */
  load(model: Model): CheckpointState | null {
    const epoch = this.latestEpoch();
    if (epoch === null) return null;
    const json = this.readState(epoch);
    const dir = this.checkpointDir(epoch);
    loadWeights(model, path.join(dir, FILES.model));
    const arrays = [...readSafetensorsFile(path.join(dir, FILES.state)).tensors.values()];
    return { epoch, steps: json.steps, json, arrays };
  }

  /** The best epoch the latest checkpoint's records name (0: no epoch evaluated), or null without a checkpoint. */
  latestBestEpoch(): number | null {
    const epoch = this.latestEpoch();
    return epoch === null ? null : bestEpochOf(this.readState(epoch));
  }

  /**
   * The weights file of a checkpoint: 'final' (LATEST's model), 'best' (LATEST's best, checked against
   * the best epoch its records name) or an epoch number. Errors name what is missing and what is kept.
   */
  weightsFile(which: 'final' | 'best' | number): { file: string; epoch: number; label: string } {
    if (which === 'final' || which === 'best') {
      const latest = this.latestEpoch();
      if (latest === null) throw new AtflowError(
        'DATA_FILE',
        `${this.runDir}: no checkpoint (checkpoints/LATEST is missing); the run has not finished an epoch yet`,
        { runDir: this.runDir },
      );
      if (which === 'final') return { file: path.join(this.checkpointDir(latest), FILES.model), epoch: latest, label: `final (epoch ${latest})` };
      const best = bestEpochOf(this.readState(latest));
      if (best === 0) throw new AtflowError(
        'DATA_FILE',
        `${this.runDir}: no epoch was evaluated, so there is no best checkpoint; use --checkpoint final`,
        { runDir: this.runDir },
      );
      return { file: this.checkedBestFile(latest, best), epoch: best, label: `best (epoch ${best})` };
    }
    const file = path.join(this.checkpointDir(which), FILES.model);
    if (!fs.existsSync(file)) {
      const kept = this.keptEpochs();
      throw new AtflowError(
        'DATA_FILE',
        `${file} does not exist; kept checkpoints: ${kept.map(epochDirName).join(', ') || 'none'} (checkpoint.keep = 'all' keeps every epoch)`,
        { file },
      );
    }
    return { file, epoch: which, label: `epoch ${which}` };
  }

  /** The checkpoint's best.safetensors, when it holds `bestEpoch`; else an error that says what it holds. */
  private checkedBestFile(latest: number, bestEpoch: number): string {
    const inCheckpoint = path.join(this.checkpointDir(latest), FILES.best);
    const legacy = path.join(this.dir, FILES.best); // run folders of earlier versions
    const file = fs.existsSync(inCheckpoint) ? inCheckpoint : fs.existsSync(legacy) ? legacy : null;
    if (file === null) throw new AtflowError(
      'DATA_FILE',
      `${inCheckpoint} is missing, but the records name epoch ${bestEpoch} as the best: the checkpoint is damaged`,
      { file: inCheckpoint },
    );
    const held = epochOfFile(file);
    if (held !== bestEpoch) {
      throw new AtflowError(
        'DATA_FILE',
        `${file} holds the weights of ${held === null ? 'an unknown epoch (no epoch metadata)' : `epoch ${held}`}, but the records name epoch ${bestEpoch} as the best; refusing to label them best`,
        { file, held, bestEpoch },
      );
    }
    return file;
  }

  /**
   * Loads the best epoch's weights into `model`: the ones held since that epoch (not yet checkpointed),
   * else the latest checkpoint's best.safetensors, whose `epoch` must be `bestEpoch`. A missing file or
   * another epoch's weights is an error, never "final reported as best".
   */
  loadBest(model: Model, bestEpoch: number): void {
    if (!(bestEpoch > 0)) throw new AtflowError(
      'DATA_FILE',
      `${this.runDir}: no epoch was evaluated, so there are no best weights`,
      { runDir: this.runDir },
    );
    if (this.best?.epoch === bestEpoch) {
      loadStateDict(model, new Map(this.best.tensors.map((t) => [t.name, t])), `the best weights (epoch ${bestEpoch})`);
      return;
    }
    const latest = this.latestEpoch();
    if (latest === null) throw new AtflowError(
      'DATA_FILE',
      `${this.runDir}: no checkpoint holds the best epoch's (${bestEpoch}) weights`,
      { runDir: this.runDir },
    );
    loadWeights(model, this.checkedBestFile(latest, bestEpoch));
  }

  /** Saves weights alone under checkpoints/<name>.safetensors (durably), e.g. for a user's own analysis. */
  saveWeightsAs(model: Model, name: string, epoch: number): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new AtflowError(
      'ARGUMENT',
      `checkpoint name '${name}' is not a plain name`,
      { name },
    );
    fs.mkdirSync(this.dir, { recursive: true });
    const file = path.join(this.dir, `${name}.safetensors`);
    saveWeights(model, file, { epoch: String(epoch) });
    return file;
  }

  /** Removes stale temp folders a killed writer left behind (only atflow's temp names; links are not followed). */
  cleanTemp(): void {
    if (!fs.existsSync(this.dir)) return;
    for (const f of fs.readdirSync(this.dir)) if (isTempName(f)) removeEntry(path.join(this.dir, f));
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
