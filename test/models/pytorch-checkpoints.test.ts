import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { createModel, loadWeights } from '../../src/models';
import { readParquetTable } from '../../src/logs/parquet-writer';
import { createSource } from '../../src/config/builtins';
import { pythonWith } from '../python-venv';

/**
 * A PyTorch user's own checkpoints, evaluated by `atflow eval`: PreAct-ResNet-18 and WRN-28-10 state_dicts
 * saved by PyTorch from nn.DataParallel (every name 'module.…'), made at test time in a temp folder by
 * bench/peers/models-crosscheck.py `wrapped` (seeded; WRN-28-10's 146 MB are not committed), with the
 * inputs as CIFAR-10 files and PyTorch's predictions on them. Also F16 / BF16 / F64 copies and a
 * torch.save .pt. PyTorch runs in a venv from the machine's package index (test/python-venv.ts).
 */
const ROOT = path.join(__dirname, '..', '..');
const GENERATOR = path.join(ROOT, 'bench', 'peers', 'models-crosscheck.py');
/** Inputs generated, and inputs evaluated per model (WRN-28-10's forward pass costs 5 GFLOP per image). */
const N = 64;
const EVALUATED = { 'preact-resnet18': 64, 'wrn-28-10': 32 } as const;

interface Predictions {
  pred: number[];
  clean_acc: number;
  margin: number[];
  top2_gap: number[];
  logits: number[];
  tensors: number;
  float_tensors: number;
  dtype_inputs?: number;
  [key: `logits_${string}`]: number[];
}
type Reference = { labels: number[] } & Record<'preact-resnet18' | 'wrn-28-10', Predictions>;

let dir: string;
let python: string;
let ref: Reference;

beforeAll(async () => {
  python = pythonWith(['torch', 'safetensors.torch', 'numpy']);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-torchckpt-'));
  const r = spawnSync(python, [GENERATOR, 'wrapped', dir, String(N)], { encoding: 'utf8', timeout: 10 * 60_000 });
  if (r.status !== 0) throw new Error(`${GENERATOR} wrapped failed: ${r.stderr}`);
  process.stdout.write(r.stdout);
  ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as Reference;
  fs.symlinkSync(path.join(ROOT, 'bin', 'atflow.js'), path.join(dir, 'atflow'));
  await initBackend('wasm');
}, 25 * 60_000);
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe.each(['preact-resnet18', 'wrn-28-10'] as const)('%s saved by PyTorch from nn.DataParallel', (model) => {
  it("atflow eval: the prefix is stripped, clean accuracy and every prediction are PyTorch's", () => {
    const n = EVALUATED[model];
    const out = path.join(dir, `ev-${model}`);
    const r = spawnSync(
      path.join(dir, 'atflow'),
      [
        'eval',
        path.join(dir, `${model}.module.safetensors`),
        '--model',
        model,
        '--dataset',
        'cifar10',
        '--eps',
        '8/255',
        '--n',
        String(n),
        '--attacks',
        'apgd-ce',
        '--apgd-steps',
        '1',
        '--quiet',
        '--out',
        out,
      ],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, ATFLOW_DATA: dir }, timeout: 20 * 60_000 },
    );
    expect(r.stderr).toContain(
      `stripped the prefix 'module.' (DataParallel / DistributedDataParallel / AveragedModel) from ${ref[model].tensors} tensor name(s)`,
    );
    expect(r.status).toBe(0);
    const evalDir = path.join(out, 'eval', `${model}.module-apgd-ce-linf-eps0.03137-test-n${n}`);
    expect(r.stdout.trim().split('\n').pop()).toBe(evalDir);
    const summary = JSON.parse(fs.readFileSync(path.join(evalDir, 'summary.json'), 'utf8')) as { clean_acc: number; n: number };
    const rows = readParquetTable(path.join(evalDir, 'robustness.parquet'), ['example', 'label', 'clean_pred', 'clean_margin']);
    const labels = Array.from(rows.getChild('label')!.toArray() as Int32Array);
    const pred = Array.from(rows.getChild('clean_pred')!.toArray() as Int32Array);
    const margin = Array.from(rows.getChild('clean_margin')!.toArray() as Float32Array);
    // PyTorch's answers on the same first n inputs
    const theirs = { pred: ref[model].pred.slice(0, n), margin: ref[model].margin.slice(0, n), gap: ref[model].top2_gap.slice(0, n) };
    const theirAcc = theirs.pred.filter((p, i) => p === ref.labels[i]).length / n;
    // Examples whose predictions may legitimately differ: PyTorch's top two logits closer than float error
    // (none so far; counted so that a near-tie cannot fail the test by chance).
    const nearTies = theirs.gap.filter((g) => g < 1e-3).length;
    const differ = pred.filter((p, i) => p !== theirs.pred[i]).length;
    const marginDiff = Math.max(...margin.map((m, i) => Math.abs(m - theirs.margin[i])));
    process.stdout.write(
      `${model}: clean accuracy on ${n} inputs, PyTorch ${(100 * theirAcc).toFixed(2)}%, atflow eval ${(100 * summary.clean_acc).toFixed(2)}%; ` +
        `predictions differing ${differ}/${n} (near-ties ${nearTies}); max |margin atflow − PyTorch| ${marginDiff.toExponential(2)} (margins up to ${Math.max(...theirs.margin.map(Math.abs)).toFixed(2)})\n`,
    );
    expect(summary.n).toBe(n);
    expect(labels).toEqual(ref.labels.slice(0, n));
    expect(new Set(theirs.pred).size).toBeGreaterThan(5); // the predictions are spread over the classes
    expect(differ).toBeLessThanOrEqual(nearTies);
    expect(Math.abs(summary.clean_acc - theirAcc)).toBeLessThanOrEqual(nearTies / n + 1e-9);
    // the head's scale (center_head) turns float32 rounding of the features into up to ~1e-4 here
    expect(marginDiff).toBeLessThan(1e-3);
  });
});

describe('preact-resnet18 in F16, BF16 and F64', () => {
  it.each(['F16', 'BF16', 'F64'])('%s: loaded as F32, saying so, with the logits PyTorch computes from the stored values', (dtype) => {
    const theirs = ref['preact-resnet18'];
    const m = theirs.dtype_inputs!;
    const model = createModel('preact-resnet18', { numClasses: 10, seed: 0 });
    const { notes } = loadWeights(model, path.join(dir, `preact-resnet18.${dtype}.safetensors`));
    // the float parameters and BN statistics convert; num_batches_tracked stays I64
    expect(notes.join('\n')).toMatch(new RegExp(`converted ${theirs.float_tensors} tensor\\(s\\) from ${dtype} to F32 on load`));
    const x = pixels(m);
    const ours = Array.from(tf.tidy(() => model.apply(x, 'eval').dataSync()));
    const expected = theirs[`logits_${dtype}`];
    const worst = Math.max(...ours.map((v, i) => Math.abs(v - expected[i])));
    process.stdout.write(`preact-resnet18 from ${dtype}: max |logit atflow − PyTorch| = ${worst.toExponential(2)} over ${m} inputs\n`);
    expect(worst).toBeLessThan(1e-4);
    x.dispose();
    model.dispose();
  });
});

describe('a torch.save .pt', () => {
  it('is a named error whose conversion command works as printed', () => {
    const model = createModel('preact-resnet18', { numClasses: 10, seed: 0 });
    let message = '';
    try {
      loadWeights(model, path.join(dir, 'preact-resnet18.pt'));
    } catch (e) {
      expect(e).toBeInstanceOf(AtflowError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/preact-resnet18\.pt: a ZIP archive, which is what torch\.save writes/);
    const command = /Convert it once in Python: (.*?) \(with the model at hand/.exec(message)?.[1];
    expect(command).toBeDefined();
    const r = spawnSync(python, ['-c', command!.replace(/; /g, '\n')], { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`the printed conversion failed: ${r.stderr}`);
    expect(loadWeights(model, path.join(dir, 'preact-resnet18.safetensors')).notes).toEqual([
      expect.stringContaining("stripped the prefix 'module.'"),
    ]);
    // the converted file holds the same tensors as PyTorch's own save_file
    const x = pixels(2);
    const converted = Array.from(tf.tidy(() => model.apply(x, 'eval').dataSync()));
    loadWeights(model, path.join(dir, 'preact-resnet18.module.safetensors'));
    expect(Array.from(tf.tidy(() => model.apply(x, 'eval').dataSync()))).toEqual(converted);
    x.dispose();
    model.dispose();
  });
});

/** The first m test images, NHWC, as atflow's cifar10 source reads them from the generated files. */
function pixels(m: number): tf.Tensor4D {
  const source = createSource('cifar10', { dir });
  const batch = source.load({ split: 'test', epoch: 0, step: 0, indices: Int32Array.from({ length: m }, (_, i) => i) });
  return batch.x as tf.Tensor4D;
}
