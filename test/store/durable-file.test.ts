import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { writeFileDurable } from '../../src/core/durable-file';
import { createModel } from '../../src/models';
import { saveWeights, weightsSnapshot } from '../../src/models/checkpoint';
import { CheckpointStore } from '../../src/store/checkpoint-store';

/** The fs module object itself (the `import * as` binding has read-only getters): src/ reads its functions from it at each call. */

const nodeFs: typeof fs = require('fs');

/**
 * Issue 24 item 2 / issue 23 "drifted copies": one durable write for every file, checkpoint weights
 * included. Before, model.safetensors, state.safetensors and best.safetensors were written and renamed
 * without fsync (and the previous checkpoint deleted right after), so a power loss could leave LATEST
 * naming empty weights. The spies record what the file system is asked to do, in order: every file of
 * a checkpoint must be fsynced before the rename that puts it in place, and the folders after.
 */

let dir: string;
beforeAll(async () => {
  await initBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-durable-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => jest.restoreAllMocks());

type Op = { op: 'open' | 'fsync' | 'rename' | 'close'; path: string; to?: string };

/** Records open / fsync / close / rename with the path each descriptor was opened on. */
function recordFs(): Op[] {
  const ops: Op[] = [];
  const fdPath = new Map<number, string>();
  const open = fs.openSync;
  const fsync = fs.fsyncSync;
  const close = fs.closeSync;
  const rename = fs.renameSync;
  jest.spyOn(nodeFs, 'openSync').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (open as (...a: unknown[]) => number)(p, ...rest);
    fdPath.set(fd, path.resolve(String(p)));
    ops.push({ op: 'open', path: path.resolve(String(p)) });
    return fd;
  }) as typeof fs.openSync);
  jest.spyOn(nodeFs, 'fsyncSync').mockImplementation((fd: number) => {
    ops.push({ op: 'fsync', path: fdPath.get(fd) ?? `fd ${fd}` });
    return fsync(fd);
  });
  jest.spyOn(nodeFs, 'closeSync').mockImplementation((fd: number) => {
    ops.push({ op: 'close', path: fdPath.get(fd) ?? `fd ${fd}` });
    return close(fd);
  });
  jest.spyOn(nodeFs, 'renameSync').mockImplementation((a: fs.PathLike, b: fs.PathLike) => {
    ops.push({ op: 'rename', path: path.resolve(String(a)), to: path.resolve(String(b)) });
    return rename(a, b);
  });
  return ops;
}

/** Index of the rename that put `file` in place, checking that its temp file was fsynced before it. */
function durablyRenamed(ops: Op[], file: string): number {
  const r = ops.findIndex((o) => o.op === 'rename' && o.to === file);
  expect([file, r >= 0]).toEqual([file, true]);
  const temp = ops[r].path;
  const synced = ops.slice(0, r).some((o) => o.op === 'fsync' && o.path === temp);
  expect([file, 'fsynced before its rename', synced]).toEqual([file, 'fsynced before its rename', true]);
  return r;
}

function fsyncedAfter(ops: Op[], folder: string, index: number): boolean {
  return ops.slice(index + 1).some((o) => o.op === 'fsync' && o.path === folder);
}

test('saveWeights (public API) writes weights durably: temp file fsynced, renamed, folder fsynced', () => {
  const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 1 });
  const file = path.join(dir, 'w', 'model.safetensors');
  const ops = recordFs();
  saveWeights(model, file);
  jest.restoreAllMocks();
  const r = durablyRenamed(ops, path.resolve(file));
  expect(fsyncedAfter(ops, path.dirname(path.resolve(file)), r)).toBe(true);
  model.dispose();
});

test('every file of a checkpoint is fsynced before it is renamed, and the folders after, before LATEST names it', () => {
  const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 2 });
  const runDir = path.join(dir, 'run');
  const store = new CheckpointStore(runDir);
  const sgd = { steps: 3, names: ['fc1.weight'], shapes: [[2, 2]] };
  const record = (epoch: number) => ({ epoch, best_epoch: epoch, test_robust_acc: 0.5, test_clean_acc: 0.9 });
  const arrays = [{ name: 'sgd/fc1.weight', dtype: 'F32' as const, shape: [2, 2], data: new Uint8Array(16) }];
  const ops = recordFs();
  const best = { epoch: 1, weights: weightsSnapshot(model, { epoch: '1' }) };
  const final = store.save(model, { epoch: 1, steps: 3, json: { epochs: [record(1)], sgd }, arrays, best });
  jest.restoreAllMocks();
  // inside the checkpoint: weights, optimizer state, the best epoch's weights and state.json each written durably
  const tmpDir = path.join(store.dir, `.tmp-epoch-0001-${process.pid}`);
  for (const f of ['model.safetensors', 'state.safetensors', 'best.safetensors', 'state.json']) durablyRenamed(ops, path.join(tmpDir, f));
  // the checkpoint folder is fsynced, renamed into place, checkpoints/ fsynced, then LATEST written durably
  const folderRename = ops.findIndex((o) => o.op === 'rename' && o.to === path.resolve(final));
  expect(ops.slice(0, folderRename).some((o) => o.op === 'fsync' && o.path === tmpDir)).toBe(true);
  expect(fsyncedAfter(ops, path.resolve(store.dir), folderRename)).toBe(true);
  const latest = durablyRenamed(ops, path.join(path.resolve(store.dir), 'LATEST'));
  expect(latest).toBeGreaterThan(folderRename);
  // the best epoch's weights are part of the checkpoint, committed by the same rename
  expect(fs.existsSync(path.join(final, 'best.safetensors'))).toBe(true);
  model.dispose();
});

test('a failed write (ENOSPC from /dev/full) keeps the old content and leaves no temp file', () => {
  const file = path.join(dir, 'kept.json');
  writeFileDurable(file, '{"v": 1}\n');
  const open = fs.openSync;
  jest
    .spyOn(nodeFs, 'openSync')
    .mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) =>
      String(p).includes('.kept.json.') ? open('/dev/full', 'w') : open(p, flags ?? 'r', mode)) as typeof fs.openSync);
  expect(() => writeFileDurable(file, '{"v": 2}\n')).toThrow(AtflowError);
  expect(() => writeFileDurable(file, '{"v": 2}\n')).toThrow(/cannot write .*kept\.json: ENOSPC/);
  jest.restoreAllMocks();
  expect(fs.readFileSync(file, 'utf8')).toBe('{"v": 1}\n');
  expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});

test('the temp file is created exclusively: an existing file or link at its name is never written through', () => {
  const target = path.join(dir, 'victim.txt');
  fs.writeFileSync(target, 'precious');
  const file = path.join(dir, 'out.txt');
  // a link planted where a temp file will be created: the write refuses it instead of writing into victim.txt
  const open = fs.openSync;
  jest.spyOn(nodeFs, 'openSync').mockImplementation(((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
    if (String(p).includes('.out.txt.') && !fs.existsSync(String(p))) fs.symlinkSync(target, String(p));
    return open(p, flags ?? 'r', mode);
  }) as typeof fs.openSync);
  expect(() => writeFileDurable(file, 'new')).toThrow(/cannot write .*out\.txt: EEXIST/);
  jest.restoreAllMocks();
  expect(fs.readFileSync(target, 'utf8')).toBe('precious');
});
