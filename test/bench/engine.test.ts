import { spawnSync } from 'child_process';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { peerPython, PEER_VENV, runTorchPeer } from '../../bench/engine';
import { countModelFlops, kernelFlops } from '../../bench/flops';
import { initBackend } from '../../src/backend/select';
import { createModel } from '../../src/models';

const ROOT = path.join(__dirname, '..', '..');

/** 2·MACs of cnn-small on 28×28×1, by hand: conv1 26·26·32·(3·3·1), conv2 11·11·64·(3·3·32), fc1 1600·128, fc2 128·10. */
const CNN_SMALL_FLOPS = 2 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 1600 * 128 + 128 * 10);

/** 2·MACs of PreAct-ResNet-18 on 32×32×3 from docs/algorithms.md §3's layer list (3×3 convs, 1×1 shortcuts, linear). */
function preactResnet18Flops(): number {
  let macs = 32 * 32 * 64 * 9 * 3; // stem
  let side = 32;
  let inC = 64;
  for (const [planes, stride] of [
    [64, 1],
    [128, 2],
    [256, 2],
    [512, 2],
  ]) {
    for (const s of [stride, 1]) {
      const out = side / s;
      macs += out * out * planes * 9 * inC; // conv1
      macs += out * out * planes * 9 * planes; // conv2
      if (s !== 1 || inC !== planes) macs += out * out * planes * inC; // 1×1 shortcut
      side = out;
      inC = planes;
    }
  }
  return 2 * (macs + 512 * 10);
}

describe('FLOP counter', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('counts a matrix product the same way whichever operand is transposed', () => {
    // [4, 6] × [6, 5] → [4, 5]: 120 MACs, whether a is stored [4, 6] or (transposed) [6, 4]
    expect(
      kernelFlops(
        'BatchMatMul',
        [
          [4, 6],
          [6, 5],
        ],
        [[4, 5]],
      ),
    ).toBe(240);
    expect(
      kernelFlops(
        'BatchMatMul',
        [
          [6, 4],
          [5, 6],
        ],
        [[4, 5]],
      ),
    ).toBe(240);
    expect(kernelFlops('Relu', [[4, 5]], [[4, 5]])).toBe(0);
  });

  it('traces cnn-small and PreAct-ResNet-18 to their hand-counted 2·MACs', async () => {
    for (const [name, shape, expected] of [
      ['cnn-small', [28, 28, 1], CNN_SMALL_FLOPS],
      ['preact-resnet18', [32, 32, 3], preactResnet18Flops()],
    ] as const) {
      const model = createModel(name, { numClasses: 10, inputShape: shape as unknown as [number, number, number], seed: 1 });
      const before = tf.memory().numTensors;
      const { forwardPerExample } = await countModelFlops(model);
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
      expect(forwardPerExample).toBe(expected);
    }
  });
});

describe('atflow bench --json (tiny run on cpu)', () => {
  it('prints the peak probe and one well-formed JSON line per measure, with timings, the FLOP rate they imply and their share of the peak', () => {
    const r = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'atflow.js'),
        'bench',
        '--json',
        '--backends',
        'cpu',
        '--models',
        'mnist',
        '--batch',
        '1',
        '--reps',
        '1',
        '--warmup',
        '0',
        '--no-peer',
      ],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } },
    );
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    const [peak, ...rows] = lines.map((l) => JSON.parse(l));
    // the peak probe: an n×n matmul, 2n³ flops in `ms`
    expect(peak).toMatchObject({ measure: 'peak_matmul', backend: 'cpu', share_of_peak: 1 });
    expect(peak.gflops).toBeCloseTo((2 * peak.batch ** 3) / (peak.ms * 1e6), 6);
    expect(peak.peak_gflops).toBe(peak.gflops);
    expect(rows.map((x) => x.measure)).toEqual(['forward', 'grad_x', 'train_step', 'pgd10_at_step']);
    const units: Record<string, number> = { forward: 1, grad_x: 2, train_step: 3, pgd10_at_step: 23 };
    for (const row of rows) {
      expect(Object.keys(row).sort()).toEqual(
        [
          'backend',
          'batch',
          'examples_per_s',
          'gflops',
          'measure',
          'model',
          'ms',
          'peer_ms',
          'ratio',
          'threads',
          'peak_gflops',
          'share_of_peak',
          'peer_share_of_peak',
        ].sort(),
      );
      expect(row.model).toContain('mnist');
      expect(row).toMatchObject({
        backend: 'cpu',
        batch: 1,
        threads: 1,
        peer_ms: null,
        ratio: null,
        peer_share_of_peak: null,
        peak_gflops: peak.gflops,
      });
      expect(row.share_of_peak).toBeCloseTo(row.gflops / peak.gflops, 9);
      expect(row.ms).toBeGreaterThan(0);
      expect(row.examples_per_s).toBeCloseTo(1000 / row.ms, 6);
      expect(row.gflops).toBeCloseTo((CNN_SMALL_FLOPS * units[row.measure]) / (row.ms * 1e6), 6);
    }
    // the readable table goes to stderr when stdout carries JSON
    expect(r.stderr).toMatch(/pgd10_at_step/);
  });

  it('reports a missing PyTorch (here: a missing python) as a note and a null peer', () => {
    const notes: string[] = [];
    const saved = process.env.ATFLOW_PYTHON;
    process.env.ATFLOW_PYTHON = path.join(ROOT, 'no-such-python');
    try {
      expect(runTorchPeer('mnist', 1, ['forward'], 1, 0, (m) => notes.push(m))).toBeNull();
    } finally {
      if (saved === undefined) delete process.env.ATFLOW_PYTHON;
      else process.env.ATFLOW_PYTHON = saved;
    }
    // the note says exactly what to run
    expect(notes.join('\n')).toMatch(/PyTorch peer not run: .*no-such-python is not available.*npm run setup:python/);
  });

  it('finds the peer in the setup:python venv (.cache/python-venv) when ATFLOW_PYTHON is not set, else python3', () => {
    const saved = process.env.ATFLOW_PYTHON;
    delete process.env.ATFLOW_PYTHON;
    try {
      const fs = require('fs') as typeof import('fs');
      const os = require('os') as typeof import('os');
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-peer-'));
      expect(peerPython(root)).toBe('python3');
      const bin = path.join(root, PEER_VENV, 'bin');
      fs.mkdirSync(bin, { recursive: true });
      fs.writeFileSync(path.join(bin, 'python'), '');
      expect(peerPython(root)).toBe(path.join(bin, 'python'));
      fs.rmSync(root, { recursive: true, force: true });
    } finally {
      if (saved !== undefined) process.env.ATFLOW_PYTHON = saved;
    }
  });
});

describe('atflow bench --suite eval (bench/eval.ts)', () => {
  jest.setTimeout(300_000);

  it('prints one row per AutoAttack stage and the total, {model, n, stage, backend, ms, peer_ms, ratio}, the stages adding up, and says how to get the reference', () => {
    const fs = require('fs') as typeof import('fs');
    const os = require('os') as typeof import('os');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-bench-eval-test-'));
    try {
      // an untrained cnn-small: APGD-CE fools every point it attacks quickly, so the run is short
      const weights = path.join(dir, 'w.safetensors');
      const made = spawnSync(
        process.execPath,
        [
          require.resolve('tsx/cli'),
          '-e',
          `require('./src/backend/select').initBackend('cpu').then(() => { const m = require('./src/models'); m.saveWeights(m.createModel('cnn-small', { numClasses: 10, inputShape: [28, 28, 1], seed: 4 }), ${JSON.stringify(weights)}); })`,
        ],
        { cwd: ROOT, encoding: 'utf8' },
      );
      expect(made.status).toBe(0);
      const env = { ...process.env };
      delete env.ATFLOW_AUTOATTACK;
      const r = spawnSync(
        process.execPath,
        [
          require.resolve('tsx/cli'),
          path.join(ROOT, 'bench', 'eval.ts'),
          '--parts',
          'autoattack',
          '--models',
          'mnist',
          '--n-mnist',
          '12',
          '--mnist-weights',
          weights,
        ],
        { cwd: ROOT, encoding: 'utf8', env },
      );
      expect(r.status).toBe(0);
      const rows = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      expect(rows.map((x) => x.stage)).toEqual(['apgd-ce', 'apgd-t', 'fab-t', 'square', 'total']);
      for (const x of rows) {
        expect(x).toMatchObject({ model: 'mnist-cnn', n: 12, peer_ms: null, ratio: null });
        expect(x.ms).toBeGreaterThanOrEqual(0);
      }
      expect(rows[4].ms).toBeCloseTo(
        rows.slice(0, 4).reduce((a, x) => a + x.ms, 0),
        6,
      );
      expect(rows[0].attacked).toBeLessThanOrEqual(12);
      expect(r.stderr).toMatch(
        /the reference AutoAttack is not run: pass --aa DIR or set ATFLOW_AUTOATTACK to a checkout of fra31\/auto-attack/,
      );
      expect(r.stderr).toMatch(/ratio = PyTorch ms \/ atflow ms/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
