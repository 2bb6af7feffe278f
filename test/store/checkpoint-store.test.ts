import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { createModel } from '../../src/models';
import { loadWeights, stateDictOf, weightsSnapshot } from '../../src/models/checkpoint';
import { readSafetensorsFile } from '../../src/models/safetensors';
import { CheckpointStore, type BestWeights } from '../../src/store/checkpoint-store';
import type { Model } from '../../src/core/model';

/**
 * The checkpoint store's contract (issue 24 item 4, issue 22 item 3):
 * - state.json is checked against a schema before a run resumes from it: a damaged file is refused
 *   naming the field (before, `epochs` not being an array resumed with wrong best_epoch rows);
 * - the best epoch's weights are saved WITH the checkpoint (CheckpointState.best, state.json
 *   `best_epoch`), with their epoch in the metadata; bestWeightsFile checks that epoch and refuses a
 *   mismatch; a missing best file, or one that is a link or a folder, is an error naming it (before:
 *   "final reported as best"). The run-level scenarios are in test/run/best-and-last-checkpoint.test.ts.
 */

let dir: string;
let n = 0;
beforeAll(async () => {
  await initBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-ckpt-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sgd = { steps: 4, names: ['fc1.weight'], shapes: [[2, 2]] };
const arrays = [{ name: 'sgd/fc1.weight', dtype: 'F32' as const, shape: [2, 2], data: new Uint8Array(16) }];
/** Records 1 … epoch whose best epoch is `best(e)` at each e. */
const records = (epoch: number, best: (e: number) => number) =>
  Array.from({ length: epoch }, (_, i) => ({ epoch: i + 1, best_epoch: Math.min(best(i + 1), i + 1), test_robust_acc: 0.5 }));

function freshStore(): { store: CheckpointStore; runDir: string } {
  const runDir = path.join(dir, `run-${n++}`);
  return { store: new CheckpointStore(runDir), runDir };
}

function model(seed: number): Model {
  return createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed });
}

/** Moves every weight a little: the "next epoch". */
function step(m: Model, by: number): void {
  tf.tidy(() => {
    for (const p of m.parameters) p.variable.assign(tf.add(p.variable, by));
  });
}

const weights = (m: Model) => stateDictOf(m).map((e) => Array.from(e.values.slice(0, 5)));

describe('state.json is checked against its schema', () => {
  const damaged: [string, (json: Record<string, unknown>) => void, RegExp][] = [
    ['epochs is not an array', (j) => (j.epochs = { 1: {} }), /state\.json: damaged checkpoint state: epochs: Expected array/],
    [
      'an epoch record is missing',
      (j) => (j.epochs = (j.epochs as unknown[]).slice(1)),
      /epochs\.0\.epoch: record 0 is epoch 2, expected 1/,
    ],
    ['fewer records than epochs', (j) => (j.epochs = (j.epochs as unknown[]).slice(0, 1)), /epochs: 1 records for a checkpoint of epoch 2/],
    [
      'best_epoch after its epoch',
      (j) => ((j.epochs as { best_epoch: number }[])[1].best_epoch = 7),
      /epochs\.1\.best_epoch: best_epoch 7 is after the record's epoch 2/,
    ],
    ['a string step count', (j) => (j.steps = 'four'), /steps: Expected number, received string/],
    ['optimizer names and shapes disagree', (j) => ((j.sgd as { shapes: unknown[] }).shapes = []), /sgd\.shapes: 0 shapes for 1 names/],
    ['best_epoch of state.json after its epoch', (j) => (j.best_epoch = 3), /best_epoch: best_epoch 3 is after the checkpoint's epoch 2/],
    [
      'state.json of another epoch',
      (j) => ((j.epoch = 1), (j.epochs = (j.epochs as unknown[]).slice(0, 1))),
      /holds epoch 1, but its folder is epoch-0002/,
    ],
  ];
  it.each(damaged)('%s: refused naming the field', (_name, damage, message) => {
    const { store } = freshStore();
    const m = model(1);
    store.save(m, { epoch: 2, steps: 4, json: { epochs: records(2, () => 2), sgd }, arrays });
    const file = path.join(store.dir, 'epoch-0002', 'state.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    damage(json);
    fs.writeFileSync(file, JSON.stringify(json));
    expect(() => store.load(m)).toThrow(message);
    m.dispose();
  });

  it('an intact state loads, its records as written', () => {
    const { store } = freshStore();
    const m = model(1);
    store.save(m, { epoch: 2, steps: 4, json: { epochs: records(2, (e) => e), sgd }, arrays });
    const s = store.load(m)!;
    expect(s.epoch).toBe(2);
    expect((s.json.epochs as { epoch: number }[]).map((r) => r.epoch)).toEqual([1, 2]);
    m.dispose();
  });
});

describe('the best weights are saved with the checkpoint and checked when loaded', () => {
  /** The best epoch's weights as the epoch stream keeps them (endEpoch) until a checkpoint writes them. */
  const bestOf = (m: Model, epoch: number): BestWeights => ({ epoch, weights: weightsSnapshot(m, { epoch: String(epoch) }) });

  it('a best epoch kept before the checkpoint is written into it, with its epoch in the metadata and state.json', () => {
    const { store } = freshStore();
    const m = model(3);
    const best = bestOf(m, 1); // epoch 1 is the best
    const atBest = weights(m);
    step(m, 0.01); // epoch 2 trains on; not better
    const dir2 = store.save(m, { epoch: 2, steps: 4, json: { epochs: records(2, () => 1), sgd }, arrays, best });
    expect(readSafetensorsFile(path.join(dir2, 'best.safetensors')).metadata?.epoch).toBe('1');
    expect(JSON.parse(fs.readFileSync(path.join(dir2, 'state.json'), 'utf8')).best_epoch).toBe(1);
    const other = model(9);
    loadWeights(other, store.bestWeightsFile()!.file);
    expect(weights(other)).toEqual(atBest);
    expect(weights(other)).not.toEqual(weights(m));
    // the next checkpoint carries the same best forward (no new best in between)
    step(m, 0.01);
    const dir3 = store.save(m, { epoch: 3, steps: 6, json: { epochs: records(3, () => 1), sgd }, arrays, best });
    expect(fs.existsSync(dir2)).toBe(false); // checkpoint.keep = 'last'
    expect(readSafetensorsFile(path.join(dir3, 'best.safetensors')).metadata?.epoch).toBe('1');
    const fresh = new CheckpointStore(store.runDir); // another process: only what is on disk
    expect(fresh.weightsFile('best')).toMatchObject({ epoch: 1, label: 'best (epoch 1)' });
    const again = model(10);
    const loaded = fresh.load(again)!;
    expect(loaded.best?.epoch).toBe(1);
    loadWeights(again, fresh.bestWeightsFile()!.file);
    expect(weights(again)).toEqual(atBest);
    [m, other, again].forEach((x) => x.dispose());
  });

  it("a best file of another epoch than the records' is refused", () => {
    const { store } = freshStore();
    const m = model(5);
    const d = store.save(m, { epoch: 2, steps: 4, json: { epochs: records(2, () => 2), sgd }, arrays, best: bestOf(m, 2) });
    // the records now say epoch 1 was the best, the file holds epoch 2
    const state = path.join(d, 'state.json');
    const json = JSON.parse(fs.readFileSync(state, 'utf8'));
    json.epochs[1].best_epoch = 1;
    json.best_epoch = 1;
    fs.writeFileSync(state, JSON.stringify(json));
    expect(() => new CheckpointStore(store.runDir).weightsFile('best')).toThrow(
      /best\.safetensors holds the weights of epoch 2, but .*state\.json names epoch 1 as the best/,
    );
    expect(() => new CheckpointStore(store.runDir).load(m)).toThrow(/holds the weights of epoch 2/);
    m.dispose();
  });

  it('a missing best file is an error, not the final weights under the name "best"', () => {
    const { store } = freshStore();
    const m = model(6);
    const best = bestOf(m, 1);
    step(m, 0.01);
    const d = store.save(m, { epoch: 2, steps: 4, json: { epochs: records(2, () => 1), sgd }, arrays, best });
    fs.rmSync(path.join(d, 'best.safetensors'));
    expect(() => new CheckpointStore(store.runDir).bestWeightsFile()).toThrow(/best\.safetensors is missing: .*names epoch 1 as the best/);
    m.dispose();
  });

  it('a best file that is a link or a folder is a named error, never followed', () => {
    const { store } = freshStore();
    const m = model(7);
    const d = store.save(m, { epoch: 1, steps: 2, json: { epochs: records(1, () => 1), sgd }, arrays, best: bestOf(m, 1) });
    const file = path.join(d, 'best.safetensors');
    fs.renameSync(file, path.join(dir, 'elsewhere.safetensors'));
    fs.symlinkSync(path.join(dir, 'elsewhere.safetensors'), file);
    expect(() => new CheckpointStore(store.runDir).bestWeightsFile()).toThrow(
      /best\.safetensors is a symbolic link, expected the best epoch's weights file: the checkpoint is damaged/,
    );
    fs.rmSync(file);
    fs.mkdirSync(file);
    expect(() => new CheckpointStore(store.runDir).bestWeightsFile()).toThrow(/best\.safetensors is a folder/);
    m.dispose();
  });
});

describe('LATEST holds a name, never a path', () => {
  it.each(['../../../ev', '/etc', 'epoch-0002/../../x'])("LATEST = '%s' is refused", (content) => {
    const { store } = freshStore();
    const m = model(7);
    store.save(m, { epoch: 2, steps: 4, json: { epochs: records(2, () => 2), sgd }, arrays });
    fs.writeFileSync(path.join(store.dir, 'LATEST'), content + '\n');
    expect(() => store.weightsFile('final')).toThrow(/checkpoints\/LATEST: points at '.*', which is not a complete checkpoint folder/);
    m.dispose();
  });

  it('LATEST that is a folder is a named error', () => {
    const { store } = freshStore();
    const m = model(8);
    store.save(m, { epoch: 1, steps: 2, json: { epochs: records(1, () => 1), sgd }, arrays });
    fs.rmSync(path.join(store.dir, 'LATEST'));
    fs.mkdirSync(path.join(store.dir, 'LATEST'));
    expect(() => store.latestEpoch()).toThrow(/checkpoints\/LATEST is a folder, expected a file naming the last checkpoint/);
    m.dispose();
  });
});
