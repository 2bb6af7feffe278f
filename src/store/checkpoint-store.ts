import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { faultPoint } from '../core/fault-injection';
import type { Model } from '../core/model';
import type { EpochRecord } from '../core/records';
import { saveWeights, loadWeights } from '../models/checkpoint';
import { readSafetensorsFile, writeSafetensorsFile, type SafetensorsTensor } from '../models/safetensors';

/**
 * Crash-safe checkpoints. One checkpoint = one folder `checkpoints/epoch-NNNN/` holding
 *   model.safetensors   weights and BatchNorm buffers (PyTorch state_dict names, see docs/models.md)
 *   state.safetensors   optimizer momentum buffers, the TE buffer, the event detector's arrays
 *   state.json          epoch, step counters, the best-so-far record, scalar state, table progress
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
      fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify({ epoch: state.epoch, steps: state.steps, ...state.json }, null, 1) + '\n');
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

  /** Loads the latest checkpoint into `model` and returns its state. */
  load(model: Model): CheckpointState | null {
    const epoch = this.latestEpoch();
    if (epoch === null) return null;
    const dir = path.join(this.dir, epochDirName(epoch));
    loadWeights(model, path.join(dir, 'model.safetensors'));
    const arrays = [...readSafetensorsFile(path.join(dir, 'state.safetensors')).tensors.values()];
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
    } catch (e: any) {
      throw new AtflowError('RESUME', `${path.join(dir, 'state.json')}: unreadable checkpoint state (${e.message})`);
    }
    return { epoch, steps: Number(json.steps ?? 0), json, arrays };
  }

  /** Saves weights alone (e.g. the best epoch's) atomically under checkpoints/<name>.safetensors. */
  saveWeightsAs(model: Model, name: string, epoch: number): string {
    fs.mkdirSync(this.dir, { recursive: true });
    const file = path.join(this.dir, `${name}.safetensors`);
    saveWeights(model, file, { epoch: String(epoch) });
    return file;
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
