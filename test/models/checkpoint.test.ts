import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { checkKeyMap, createModel, loadStateDict, loadWeights, saveWeights, stateDictOf } from '../../src/models';
import { readSafetensorsFile, writeSafetensorsFile, type SafetensorsTensor } from '../../src/models/safetensors';
import { firstDifference, unitValues } from './helpers';

const FIXTURES = path.join(__dirname, 'fixtures');
let dir: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-ckpt-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function input(shape: [number, number, number], batch: number, seed: number): tf.Tensor4D {
  return tf.tensor4d(unitValues(batch * shape[0] * shape[1] * shape[2], seed), [batch, ...shape]);
}

const floats = (bytes: Uint8Array) => new Float32Array(new Uint8Array(bytes).buffer);

describe('checkpoints: round trip of every model', () => {
  const cases: [string, [number, number, number]][] = [
    ['mlp', [28, 28, 1]],
    ['cnn-small', [28, 28, 1]],
    ['resnet18', [32, 32, 3]],
    ['preact-resnet18', [32, 32, 3]],
    ['wrn-16-2', [32, 32, 3]],
    ['vgg16', [32, 32, 3]],
  ];
  it.each(cases)('%s: save, load into a model with another seed, same outputs and buffers', (name, shape) => {
    const a = createModel(name, { numClasses: 3, inputShape: shape, seed: 1 });
    const b = createModel(name, { numClasses: 3, inputShape: shape, seed: 2 });
    const x = input(shape, 2, 7);
    tf.tidy(() => a.apply(x, 'train')); // moves running statistics and counters away from their defaults
    const file = path.join(dir, `${name}.safetensors`);
    saveWeights(a, file);
    const before = tf.tidy(() => b.apply(x, 'eval').dataSync());
    const expected = tf.tidy(() => a.apply(x, 'eval').dataSync());
    expect(Array.from(before)).not.toEqual(Array.from(expected));
    loadWeights(b, file);
    expect(Array.from(tf.tidy(() => b.apply(x, 'eval').dataSync()))).toEqual(Array.from(expected));
    const sa = stateDictOf(a);
    const sb = stateDictOf(b);
    expect(sb.map((e) => e.name)).toEqual(sa.map((e) => e.name));
    sa.forEach((e, i) => expect([e.name, firstDifference(sb[i].values, e.values)]).toEqual([e.name, -1]));
    const meta = readSafetensorsFile(file).metadata!;
    expect(meta).toMatchObject({ format: 'pt', 'atflow.model': name, 'atflow.num_classes': '3', 'atflow.input_shape': shape.join(',') });
    x.dispose();
    a.dispose();
    b.dispose();
  });
});

describe('checkpoints: PyTorch layouts', () => {
  it('stores conv kernels OIHW, linear weights [out, in], counters as I64', () => {
    const m = createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: 3 });
    const file = path.join(dir, 'layout.safetensors');
    saveWeights(m, file);
    const t = readSafetensorsFile(file).tensors;
    const conv2 = t.get('conv2.weight')!;
    expect(conv2.dtype).toBe('F32');
    expect(conv2.shape).toEqual([64, 32, 3, 3]);
    const hwio = m.parameters.find((p) => p.name === 'conv2.weight')!.variable.arraySync() as number[][][][];
    const oihw = floats(conv2.data);
    // PyTorch index (o, i, kh, kw) is at ((o·32 + i)·3 + kh)·3 + kw; tfjs holds it at [kh][kw][i][o].
    for (const [o, i, kh, kw] of [
      [0, 0, 0, 0],
      [63, 31, 2, 2],
      [5, 17, 1, 2],
      [40, 3, 2, 0],
    ]) {
      expect(oihw[((o * 32 + i) * 3 + kh) * 3 + kw]).toBe(hwio[kh][kw][i][o]);
    }
    const fc1 = t.get('fc1.weight')!;
    expect(fc1.shape).toEqual([128, 1600]);
    const inOut = m.parameters.find((p) => p.name === 'fc1.weight')!.variable.arraySync() as number[][];
    expect(floats(fc1.data)[7 * 1600 + 1234]).toBe(inOut[1234][7]);
    m.dispose();

    const r = createModel('resnet18', { numClasses: 10, seed: 3 });
    tf.tidy(() => r.apply(input([32, 32, 3], 2, 1), 'train'));
    tf.tidy(() => r.apply(input([32, 32, 3], 2, 2), 'train'));
    saveWeights(r, file);
    const nbt = readSafetensorsFile(file).tensors.get('layer3.1.bn2.num_batches_tracked')!;
    expect(nbt.dtype).toBe('I64');
    expect(nbt.shape).toEqual([]);
    expect(Array.from(nbt.data)).toEqual([2, 0, 0, 0, 0, 0, 0, 0]);
    r.dispose();
  });

  it('loads a file written by PyTorch (safetensors.torch.save_file) and reproduces its logits', () => {
    const m = createModel('cnn-small', { numClasses: 2, inputShape: [10, 10, 1], seed: 0 });
    loadWeights(m, path.join(FIXTURES, 'cnn-small-10x10x1-k2.torch.safetensors'));
    const io = readSafetensorsFile(path.join(FIXTURES, 'cnn-small-10x10x1-k2.io.safetensors')).tensors;
    const x = tf.tensor4d(floats(io.get('x_nhwc')!.data), [3, 10, 10, 1]);
    const ours = tf.tidy(() => m.apply(x, 'eval').dataSync());
    const theirs = floats(io.get('logits')!.data);
    ours.forEach((v, i) => expect(Math.abs(v - theirs[i])).toBeLessThan(1e-5));
    x.dispose();
    m.dispose();
  });
});

describe('checkpoints: mismatches are named errors and leave the model unchanged', () => {
  const reference = () => {
    const m = createModel('cnn-small', { numClasses: 2, inputShape: [10, 10, 1], seed: 5 });
    const file = path.join(dir, 'ref.safetensors');
    saveWeights(m, file);
    return { m, file, tensors: [...readSafetensorsFile(file).tensors.values()] };
  };
  const expectError = (f: () => void, message: RegExp) => {
    let caught: unknown;
    try {
      f();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AtflowError);
    expect((caught as Error).message).toMatch(message);
  };

  it('missing, extra, mis-shaped, mis-typed tensors; truncated files; another model', () => {
    const { m, file, tensors } = reference();
    const target = createModel('cnn-small', { numClasses: 2, inputShape: [10, 10, 1], seed: 6 });
    const snapshot = stateDictOf(target);
    const variant = (name: string, list: typeof tensors) => {
      const f = path.join(dir, name);
      writeSafetensorsFile(f, list);
      return f;
    };
    expectError(
      () =>
        loadWeights(
          target,
          variant(
            'missing.st',
            tensors.filter((t) => t.name !== 'fc1.bias'),
          ),
        ),
      /missing\.st: missing tensor\(s\) 'fc1.bias'/,
    );
    expectError(
      () =>
        loadWeights(target, variant('extra.st', [...tensors, { name: 'fc3.weight', dtype: 'F32', shape: [1], data: new Uint8Array(4) }])),
      /extra\.st: tensor\(s\) 'fc3.weight' do not belong to model 'cnn-small'/,
    );
    expectError(
      () =>
        loadWeights(
          target,
          variant(
            'shape.st',
            tensors.map((t) => (t.name === 'fc2.bias' ? { ...t, shape: [1, 2] } : t)),
          ),
        ),
      /shape\.st: tensor 'fc2.bias' has shape \[1, 2\], model 'cnn-small' expects \[2\]/,
    );
    expectError(
      () =>
        loadWeights(
          target,
          variant(
            'dtype.st',
            tensors.map((t) => (t.name === 'fc2.bias' ? { ...t, dtype: 'I32' as const } : t)),
          ),
        ),
      /dtype\.st: tensor 'fc2.bias' is I32, model 'cnn-small' expects a float \(F32, F16, BF16, F64\)/,
    );
    const bytes = fs.readFileSync(file);
    const cut = path.join(dir, 'cut.st');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    expectError(() => loadWeights(target, cut), /cut\.st: truncated: tensor '.*' ends at data byte/);
    expectError(() => loadWeights(target, path.join(dir, 'nope.st')), /cannot read safetensors file .*nope\.st/);
    const other = createModel('wrn-10-1', { numClasses: 2, seed: 1 });
    expectError(
      () => loadWeights(other, file),
      /missing tensor\(s\) 'block1.layer.0.bn1.weight', .* and 40 more that model 'wrn-10-1' needs \(46 tensors\)/,
    );
    // nothing was half-loaded
    const after = stateDictOf(target);
    snapshot.forEach((e, i) => expect([e.name, firstDifference(after[i].values, e.values)]).toEqual([e.name, -1]));
    [m, target, other].forEach((x) => x.dispose());
  });
});

describe("checkpoints: other people's names and dtypes", () => {
  const torchFile = path.join(FIXTURES, 'cnn-small-10x10x1-k2.torch.safetensors');
  const torchTensors = () => [...readSafetensorsFile(torchFile).tensors.values()];
  /** The fixture written again with every name passed through `rename` (and `convert` applied to each tensor). */
  const variant = (name: string, rename: (n: string) => string, convert: (t: SafetensorsTensor) => SafetensorsTensor = (t) => t) => {
    const f = path.join(dir, name);
    writeSafetensorsFile(
      f,
      torchTensors().map((t) => ({ ...convert(t), name: rename(t.name) })),
    );
    return f;
  };
  /** PyTorch's logits for the fixture's inputs, and the model's after loading `file`. */
  const logitsAfterLoading = (file: string, options = {}) => {
    const m = createModel('cnn-small', { numClasses: 2, inputShape: [10, 10, 1], seed: 0 });
    const report = loadWeights(m, file, options);
    const io = readSafetensorsFile(path.join(FIXTURES, 'cnn-small-10x10x1-k2.io.safetensors')).tensors;
    const x = tf.tensor4d(floats(io.get('x_nhwc')!.data), [3, 10, 10, 1]);
    const ours = Array.from(tf.tidy(() => m.apply(x, 'eval').dataSync()));
    x.dispose();
    m.dispose();
    return { ours, theirs: Array.from(floats(io.get('logits')!.data)), notes: report.notes };
  };
  const close = (a: number[], b: number[]) => a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(1e-5));

  it.each([
    ['module.', 'DataParallel / DistributedDataParallel / AveragedModel'],
    ['_orig_mod.', 'torch.compile'],
    ['model.', 'a wrapper module named model'],
  ])("strips the wrapper prefix '%s' and says so", (prefix, why) => {
    const { ours, theirs, notes } = logitsAfterLoading(variant(`wrapped-${prefix}st`, (n) => prefix + n));
    close(ours, theirs);
    expect(notes).toEqual([
      expect.stringMatching(
        new RegExp(`stripped the prefix '${prefix.replace('.', '\\.')}' \\(${why.replace(/[/()]/g, '.')}\\) from 8 tensor name\\(s\\)`),
      ),
    ]);
  });

  it('strips nested wrappers (torch.compile of a DDP model: _orig_mod.module.)', () => {
    const { ours, theirs, notes } = logitsAfterLoading(variant('nested.st', (n) => `_orig_mod.module.${n}`));
    close(ours, theirs);
    expect(notes.join('\n')).toMatch(/'_orig_mod\.'.*\n.*'module\.'/);
  });

  it('refuses two tensors that load into the same variable', () => {
    const f = path.join(dir, 'twice.st');
    const t = torchTensors();
    writeSafetensorsFile(f, [...t, { ...t[0], name: `module.${t[0].name}` }]);
    const m = createModel('cnn-small', { numClasses: 2, inputShape: [10, 10, 1], seed: 0 });
    expect(() => loadWeights(m, f)).toThrow(/tensors '(conv1\.\w+)' and 'module\.\1' both load into '\1' of model 'cnn-small'/);
    m.dispose();
  });

  it('converts F64 to F32 (exact for values that were F32) and says so', () => {
    const toF64 = (t: SafetensorsTensor) => ({
      ...t,
      dtype: 'F64' as const,
      data: new Uint8Array(Float64Array.from(floats(t.data)).buffer),
    });
    const { ours, theirs, notes } = logitsAfterLoading(variant('f64.st', (n) => n, toF64));
    const reference = logitsAfterLoading(torchFile).ours;
    expect(ours).toEqual(reference);
    close(ours, theirs);
    expect(notes).toEqual([
      expect.stringContaining('converted 8 tensor(s) from F64 to F32 on load (rounded to nearest, as PyTorch .float())'),
    ]);
  });

  it('a key map renames (exact names, prefixes) and drops; without it the error lists both sides', () => {
    const f = variant('renamed.st', (n) => (n.startsWith('fc2.') ? n.replace('fc2', 'head') : `features.${n}`));
    const withN = path.join(dir, 'renamed-n.st');
    writeSafetensorsFile(withN, [
      ...readSafetensorsFile(f).tensors.values(),
      { name: 'n_averaged', dtype: 'I64', shape: [], data: new Uint8Array(8) },
    ]);
    const m = createModel('cnn-small', { numClasses: 2, inputShape: [10, 10, 1], seed: 0 });
    let message = '';
    try {
      loadWeights(m, withN);
    } catch (e) {
      expect(e).toBeInstanceOf(AtflowError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/missing tensor\(s\) 'conv1\.weight', 'conv1\.bias', 'conv2\.weight', 'conv2\.bias', 'fc1\.weight' and 3 more/);
    expect(message).toMatch(/\n {2}conv1\.weight \[32, 1, 3, 3\]\s+features\.conv1\.weight \[32, 1, 3, 3\]\n/);
    expect(message).toMatch(/\n {2}fc2\.weight \[2, 128\]\s+-\n/);
    expect(message).toMatch(/\n {2}-\s+head\.weight \[2, 128\]\n/);
    expect(message).toMatch(/\n {2}-\s+n_averaged \[\]\n/);
    m.dispose();
    const keyMap = { 'features.*': '*', 'head.*': 'fc2.*', n_averaged: null, 'features.fc3.weight': 'x' };
    const { ours, theirs, notes } = logitsAfterLoading(withN, { keyMap });
    close(ours, theirs);
    expect(notes).toEqual([
      expect.stringContaining('the key map renamed 8 tensor(s) and dropped 1'),
      expect.stringContaining("key map entries that matched no tensor: 'features.fc3.weight'"),
    ]);
    delete (keyMap as Record<string, unknown>)['features.fc3.weight'];
    // loadStateDict takes the same options
    const m2 = createModel('cnn-small', { numClasses: 2, inputShape: [10, 10, 1], seed: 0 });
    expect(loadStateDict(m2, readSafetensorsFile(withN).tensors, 'mine', { keyMap }).notes).toEqual([
      'mine: the key map renamed 8 tensor(s) and dropped 1',
    ]);
    m2.dispose();
  });

  it('suggests the key map when one prefix explains every name', () => {
    const m = createModel('cnn-small', { numClasses: 2, inputShape: [10, 10, 1], seed: 0 });
    expect(() =>
      loadWeights(
        m,
        variant('backbone.st', (n) => `backbone.${n}`),
      ),
    ).toThrow(/every unmatched name in the file is the model's name after 'backbone\.': try the key map \{"backbone\.\*": "\*"\}/);
    m.dispose();
  });

  it('checks a key map: values are names or null, a * only ends a prefix', () => {
    expect(checkKeyMap({ 'a.*': 'b.*', c: 'd', e: null })).toEqual({ 'a.*': 'b.*', c: 'd', e: null });
    expect(() => checkKeyMap({ a: 3 })).toThrow(/key map: "a": 3 must map to a name or null/);
    expect(() => checkKeyMap({ '*': 'x' })).toThrow(/has a '\*' that is not the end of a prefix/);
    expect(() => checkKeyMap({ 'a.*.b': 'x' })).toThrow(/has a '\*' that is not the end of a prefix/);
    expect(() => checkKeyMap({ a: 'b*' })).toThrow(/has a '\*' in the new name/);
  });
});
