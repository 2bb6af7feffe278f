import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { faultPoint } from '../core/fault-injection';
import type { Model } from '../core/model';
import type { EpochRecord } from '../core/records';
import { saveWeights, loadWeights, type WeightsSnapshot } from '../models/checkpoint';
import { readSafetensorsFile, writeSafetensorsFile, type SafetensorsTensor } from '../models/safetensors';

/**
 * Crash-safe checkpoints. One checkpoint = one folder `checkpoints/epoch-NNNN/` holding
 *   model.safetensors   weights and BatchNorm buffers (PyTorch state_dict names, see docs/models.md)
 *   state.safetensors   optimizer momentum buffers, the TE buffer, the event detector's arrays
 *   state.json          epoch, step counters, the best-so-far record, scalar state, table progress
 *   best.safetensors    the best epoch's weights (state.json `best_epoch`; absent while no epoch was evaluated)
 * It is written into a temp folder, fsynced, renamed into place; only then does `LATEST` (written
 * atomically) point at it, and only then is the previous checkpoint removed. A crash at any point
 * leaves the last complete checkpoint readable.
 */
export interface CheckpointState {
  /** Last completed epoch. */
  readonly epoch: number;
  /** Optimizer steps taken so far. */
  readonly steps: number;
  /** Anything JSON-serialisable: best record, detector phase, schedule, counters. */
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

const BEST_FILE = 'best.safetensors';

/** The epoch a weights file says it holds (its `epoch` metadata), NaN when it says none. */
function fileEpoch(metadata: Readonly<Record<string, string>> | undefined): number {
  const v = metadata?.epoch;
  return v === undefined ? NaN : Number(v);
}

const CKPT_DIR = 'checkpoints';

function epochDirName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`;
}

function fsyncPath(p: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(p, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* fsync of a directory is not supported everywhere; the rename is still atomic */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Best effort: a temp left behind is removed by cleanTemp() at the next start. */
function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    /* e.g. a read-only file system */
  }
}

function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, data);
    fsyncPath(tmp);
    fs.renameSync(tmp, file);
  } catch (e) {
    removeQuietly(tmp);
    throw new AtflowError('IO', `cannot write ${file}: ${(e as Error).message}`, { path: file });
  }
  fsyncPath(path.dirname(file));
}

export class CheckpointStore {
  readonly dir: string;

  constructor(readonly runDir: string) {
    this.dir = path.join(runDir, CKPT_DIR);
  }

  /** The epoch of the last complete checkpoint, or null. */
  latestEpoch(): number | null {
    const latest = path.join(this.dir, 'LATEST');
    if (!fs.existsSync(latest)) return null;
    const name = fs.readFileSync(latest, 'utf8').trim();
    const m = /^epoch-(\d+)$/.exec(name);
    if (!m || !fs.existsSync(path.join(this.dir, name, 'state.json'))) {
      throw new AtflowError('RESUME', `${latest}: points at '${name}', which is not a complete checkpoint folder`, { file: latest });
    }
    return Number(m[1]);
  }

  /** `keepPrevious`: leave the earlier checkpoint folders in place (checkpoint.keep = 'all'). */
  save(model: Model, state: CheckpointState, keepPrevious = false): string {
    fs.mkdirSync(this.dir, { recursive: true });
    const previous = this.latestEpochOrNull();
    const final = path.join(this.dir, epochDirName(state.epoch));
    const tmp = path.join(this.dir, `.tmp-${epochDirName(state.epoch)}-${process.pid}`);
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp);
      saveWeights(model, path.join(tmp, 'model.safetensors'), { epoch: String(state.epoch) });
      writeSafetensorsFile(path.join(tmp, 'state.safetensors'), state.arrays, { epoch: String(state.epoch) });
      const best = state.best ?? null;
      if (best) writeSafetensorsFile(path.join(tmp, BEST_FILE), best.weights.tensors, { ...best.weights.metadata, epoch: String(best.epoch) });
      fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify({ epoch: state.epoch, steps: state.steps, ...state.json, best_epoch: best?.epoch ?? 0 }, null, 1) + '\n');
      fsyncPath(path.join(tmp, 'state.json'));
      fsyncPath(tmp);
    } catch (e) {
      // disk full, read-only folder: the previous checkpoint and LATEST are untouched
      removeQuietly(tmp);
      const kept = previous === null ? 'no earlier checkpoint exists' : `the previous checkpoint ${epochDirName(previous)} is kept`;
      throw new AtflowError('IO', `cannot write checkpoint ${final}: ${(e as Error).message}; ${kept}`, { path: final });
    }
    faultPoint('checkpoint-write');
    fs.rmSync(final, { recursive: true, force: true });
    fs.renameSync(tmp, final);
    fsyncPath(this.dir);
    writeAtomic(path.join(this.dir, 'LATEST'), epochDirName(state.epoch) + '\n');
    if (!keepPrevious && previous !== null && previous !== state.epoch) fs.rmSync(path.join(this.dir, epochDirName(previous)), { recursive: true, force: true });
    return final;
  }

  private latestEpochOrNull(): number | null {
    try {
      return this.latestEpoch();
    } catch {
      return null;
    }
  }

  /** Loads the latest checkpoint into `model` and returns its state, the best epoch's weights included. */
  load(model: Model): CheckpointState | null {
    const epoch = this.latestEpoch();
    if (epoch === null) return null;
    const dir = path.join(this.dir, epochDirName(epoch));
    loadWeights(model, path.join(dir, 'model.safetensors'));
    const arrays = [...readSafetensorsFile(path.join(dir, 'state.safetensors')).tensors.values()];
    const json = this.readState(epoch);
    const bestFile = this.bestFileOf(epoch, json);
    let best: BestWeights | null = null;
    if (bestFile) {
      const f = readSafetensorsFile(bestFile.file);
      best = { epoch: bestFile.epoch, weights: { tensors: [...f.tensors.values()], metadata: f.metadata ?? {} } };
    }
    return { epoch, steps: Number(json.steps ?? 0), json, arrays, best };
  }

  /** The latest checkpoint's state.json, without loading anything (null when there is no checkpoint). */
  latestState(): Record<string, unknown> | null {
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
    if (epoch === null) throw new AtflowError('DATA_FILE', `${this.runDir}: no checkpoint (checkpoints/LATEST is missing), so no best epoch's weights`, { runDir: this.runDir });
    return this.bestFileOf(epoch, this.readState(epoch));
  }

  private readState(epoch: number): Record<string, unknown> {
    const file = path.join(this.dir, epochDirName(epoch), 'state.json');
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new AtflowError('RESUME', `${file}: unreadable checkpoint state (${(e as Error).message})`, { file });
    }
  }

  /**
   * Where checkpoint `epoch` keeps its best weights: best.safetensors in its folder (state.json
   * `best_epoch`), or, in run folders written before the best weights moved into the checkpoint,
   * checkpoints/best.safetensors, named by the records' last `best_epoch`.
   */
  private bestFileOf(epoch: number, json: Record<string, unknown>): { file: string; epoch: number } | null {
    const stateFile = path.join(this.dir, epochDirName(epoch), 'state.json');
    const legacy = json.best_epoch === undefined;
    const records = checkpointEpochs(json);
    const bestEpoch = legacy ? (records.length ? records[records.length - 1].best_epoch : 0) : Number(json.best_epoch);
    if (!(bestEpoch > 0)) return null;
    const file = legacy ? path.join(this.dir, BEST_FILE) : path.join(this.dir, epochDirName(epoch), BEST_FILE);
    if (!fs.existsSync(file)) {
      throw new AtflowError('DATA_FILE', `${file} is missing: ${stateFile} names epoch ${bestEpoch} as the best, and its weights are kept nowhere else`, { file, bestEpoch });
    }
    const holds = fileEpoch(readSafetensorsFile(file).metadata ?? undefined);
    if (holds !== bestEpoch) {
      // an older atflow wrote the best weights apart from the checkpoint, so a stop could leave them ahead of it
      const why = legacy ? '; this run folder is from an atflow that saved the best weights apart from its checkpoints, and they are lost: --rerun trains it again' : '';
      throw new AtflowError(
        'DATA_FILE',
        `${file} holds the weights of epoch ${Number.isNaN(holds) ? '(none stated)' : holds}, but ${stateFile} names epoch ${bestEpoch} as the best: the file does not belong to these records${why}`,
        { file, bestEpoch, fileEpoch: holds },
      );
    }
    return { file, epoch: bestEpoch };
  }

  /** Removes stale temp folders a killed writer left behind. */
  cleanTemp(): void {
    if (!fs.existsSync(this.dir)) return;
    for (const f of fs.readdirSync(this.dir)) if (f.startsWith('.tmp-') || f.includes('.tmp-')) fs.rmSync(path.join(this.dir, f), { recursive: true, force: true });
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
