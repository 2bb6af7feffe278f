import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import type * as tf from '@tensorflow/tfjs';
import { AtflowError, type ErrorCode } from '../../core/errors';
import type { Model } from '../../core/model';
import { REGISTRY_REPLICA, type ReplicaRecipe, type ReplicaSpec } from '../../config/replica';
import type { FromWorker, ShareResult, StepMessage } from './protocol';
import { splitShares, type Share } from './shares';
import { stateLayout, variablesByName, writeState, type StateLayout } from './state-layout';

export interface DataParallelPoolOptions {
  /** Number of worker threads (≥ 1). */
  readonly workers: number;
  /** The main thread's model: its architecture is rebuilt by name in each worker, its values broadcast every step. */
  readonly model: Model;
  /** Registry name and options of the trainer (src/algorithms/trainers), rebuilt in each worker. */
  readonly trainer: string;
  readonly trainerOptions?: ReplicaSpec['trainerOptions'];
  /** Backend of the workers; default 'wasm'. */
  readonly backend?: 'wasm' | 'cpu';
  /** How workers rebuild the model and trainer; default the registry of built-ins (REGISTRY_REPLICA, no plugins). */
  readonly replica?: ReplicaRecipe;
}

/** One data-parallel step's input: the batch as host arrays (row-major NHWC). */
export interface PoolStepInput {
  readonly x: Float32Array;
  readonly shape: readonly [number, number, number, number];
  readonly labels: Int32Array;
  /** The batch's attack seed (as the `attack` operator derives it); every share attacks with it. */
  readonly seed: number;
  /**
   * The rows' source indices (the batch's `indices`): each row's random start is drawn from (seed, its
   * index), so the shares draw exactly the single-thread starts. Default: the rows' positions.
   */
  readonly rowKeys?: Int32Array;
  readonly te: { readonly weight: number; readonly target: Float32Array } | null;
}

export interface PoolStepOutput {
  readonly shares: readonly Share[];
  readonly results: readonly ShareResult[];
}

/** The number of workers the machine supports: one per schedulable core. */
export function defaultWorkerCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** worker.js when running compiled (dist/), else (the sources, under jest) the bootstrap that loads worker.ts through tsx. */
function workerEntry(): string {
  const compiled = path.join(__dirname, 'worker.js');
  if (fs.existsSync(compiled)) return compiled;
  return path.join(__dirname, 'worker-bootstrap.js');
}

interface Pending {
  resolve(v: FromWorker): void;
  reject(e: Error): void;
}

/** A worker thread with one outstanding request at a time. */
class WorkerHandle {
  private pending: Pending | null = null;
  private failure: Error | null = null;
  exited = false;

  constructor(
    readonly index: number,
    readonly worker: Worker,
  ) {
    // Referenced only while a request is out: an idle pool never keeps the process alive (a forgotten
    // close() cannot hang a CLI or jest), a busy one does (an awaited step is not lost at exit).
    worker.unref();
    worker.on('message', (m: FromWorker) => {
      const p = this.pending;
      this.pending = null;
      worker.unref();
      if (!p) return;
      if (m.type === 'error')
        p.reject(new AtflowError(m.code as ErrorCode, `data-parallel worker ${index}: ${m.message}`, { worker: index }));
      else p.resolve(m);
    });
    worker.on('error', (e) =>
      this.fail(new AtflowError('BACKEND', `data-parallel worker ${index} crashed: ${e.message}`, { worker: index })),
    );
    worker.on('exit', (code) => {
      this.exited = true;
      if (this.pending)
        this.fail(new AtflowError('BACKEND', `data-parallel worker ${index} exited (code ${code}) during a request`, { worker: index }));
    });
  }

  private fail(e: Error): void {
    this.failure = e;
    const p = this.pending;
    this.pending = null;
    this.worker.unref();
    p?.reject(e);
  }

  request(message: unknown, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new AtflowError('ARGUMENT', `data-parallel worker ${this.index} is busy`));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.ref();
      this.worker.postMessage(message, transfer);
    });
  }
}

/**
 * A pool of worker threads holding identical replicas of one model. `step` splits a batch into
 * contiguous shares, each worker runs the trainer's attack and train-mode gradient on its share with
 * the main model's current weights, and the per-share results come back; combining them and the
 * update are trainStepParallel's. Always `close()` the pool (worker threads keep the process alive).
 */
export class DataParallelPool {
  private closed = false;
  private nextId = 0;

  private constructor(
    private readonly handles: WorkerHandle[],
    readonly layout: StateLayout,
    private readonly state: SharedArrayBuffer,
    private readonly variables: Map<string, tf.Variable>,
    readonly replica: ReplicaSpec,
  ) {}

  get size(): number {
    return this.handles.length;
  }

  static async create(options: DataParallelPoolOptions): Promise<DataParallelPool> {
    const { model } = options;
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new AtflowError('CONFIG', `data-parallel: workers must be an integer ≥ 1, got ${options.workers}`, {
        field: 'workers',
        value: options.workers,
      });
    }
    const replica: ReplicaSpec = {
      model: model.name,
      numClasses: model.numClasses,
      inputShape: [...model.inputShape] as [number, number, number],
      trainer: options.trainer,
      trainerOptions: options.trainerOptions ?? {},
      backend: options.backend ?? 'wasm',
      builder: options.replica?.builder ?? REGISTRY_REPLICA,
      plugins: options.replica?.plugins ?? [],
    };
    const layout = stateLayout(model.parameters, model.buffers);
    const state = new SharedArrayBuffer(Math.max(4, layout.length * 4));
    const handles: WorkerHandle[] = [];
    const entry = workerEntry();
    try {
      for (let k = 0; k < options.workers; k++) handles.push(new WorkerHandle(k, new Worker(entry)));
      await Promise.all(handles.map((h) => h.request({ type: 'init', replica, layout, state })));
    } catch (e) {
      await Promise.all(handles.map((h) => h.worker.terminate()));
      throw e;
    }
    return new DataParallelPool(handles, layout, state, variablesByName(model.parameters, model.buffers), replica);
  }

  /**
   * Broadcasts the main model's weights and buffers, then runs one share per worker. Workers with
   * an empty share (batch smaller than the pool) sit the step out.
   */
  async step(input: PoolStepInput): Promise<PoolStepOutput> {
    if (this.closed) throw new AtflowError('ARGUMENT', 'data-parallel: the pool is closed');
    const [B, H, W, C] = input.shape;
    const D = H * W * C;
    if (input.x.length !== B * D)
      throw new AtflowError('SHAPE', `data-parallel: x has ${input.x.length} values, shape [${input.shape}] needs ${B * D}`);
    if (input.labels.length !== B) throw new AtflowError('SHAPE', `data-parallel: ${input.labels.length} labels for a batch of ${B}`);
    const K = this.replica.numClasses;
    if (input.te && input.te.target.length !== B * K)
      throw new AtflowError('SHAPE', `data-parallel: TE target has ${input.te.target.length} values, expected ${B}×${K}`);
    writeState(this.state, this.layout, this.variables);
    if (input.rowKeys && input.rowKeys.length !== B)
      throw new AtflowError('SHAPE', `data-parallel: ${input.rowKeys.length} row keys for a batch of ${B}`);
    const rowKeys = input.rowKeys ?? Int32Array.from({ length: B }, (_, i) => i);
    const shares = splitShares(B, this.handles.length);
    const id = this.nextId++;
    const replies = await Promise.all(
      shares.map((s, k) => {
        const msg: StepMessage = {
          type: 'step',
          id,
          x: input.x.slice(s.start * D, s.end * D),
          shape: [s.end - s.start, H, W, C],
          labels: input.labels.slice(s.start, s.end),
          seed: input.seed,
          rowKeys: rowKeys.slice(s.start, s.end),
          te: input.te ? { weight: input.te.weight, target: input.te.target.slice(s.start * K, s.end * K) } : null,
        };
        const transfer = [msg.x.buffer, msg.labels.buffer, msg.rowKeys.buffer, ...(msg.te ? [msg.te.target.buffer] : [])] as ArrayBuffer[];
        return this.handles[k].request(msg, transfer);
      }),
    );
    const results = replies.map((r) => {
      if (r.type !== 'step-done') throw new AtflowError('BACKEND', `data-parallel: unexpected worker reply '${r.type}'`);
      return r.result;
    });
    return { shares, results };
  }

  /**
   * Disposes every replica and ends the threads. Resolves to the number of tensors each worker still
   * held after disposing its replica (0 when nothing leaked). Safe to call twice.
   */
  async close(): Promise<number[]> {
    if (this.closed) return [];
    this.closed = true;
    const left = await Promise.all(
      this.handles.map(async (h) => {
        try {
          if (h.exited) return -1;
          const r = await h.request({ type: 'close' });
          return r.type === 'closed' ? r.numTensors : -1;
        } catch {
          return -1;
        } finally {
          await h.worker.terminate();
        }
      }),
    );
    return left;
  }
}
