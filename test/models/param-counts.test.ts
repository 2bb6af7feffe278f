import { AtflowError } from '../../src/core/errors';
import { countParameters } from '../../src/core/model';
import { createModel, describeModel, listModels, MODEL_NAMES } from '../../src/models';

const count = (name: string, numClasses: number) => describeModel(name, { numClasses }).parameterCount;

describe('parameter counts (docs/algorithms.md §3; no tensors are allocated)', () => {
  it('match the reference definitions', () => {
    expect(count('resnet18', 10)).toBe(11_173_962);
    expect(count('resnet18', 100)).toBe(11_220_132);
    expect(count('wrn-34-10', 10)).toBe(46_160_474);
    expect(count('wrn-34-10', 100)).toBe(46_218_164);
    expect(count('wrn-28-10', 10)).toBe(36_479_194);
    expect(count('vgg16', 10)).toBe(14_728_266);
    // Rice et al.'s PreActResNet18, counted by PyTorch from preactresnet.py (bench/peers/models-crosscheck.py).
    expect(count('preact-resnet18', 10)).toBe(11_172_170);
  });

  it('mlp and cnn-small follow their documented layer sizes', () => {
    // mlp: 784→256→256→K, with biases.
    expect(count('mlp', 10)).toBe(784 * 256 + 256 + (256 * 256 + 256) + (256 * 10 + 10));
    // cnn-small on 28×28×1: conv 1→32, conv 32→64 (3×3, bias), fc 64·5·5→128, fc 128→K.
    expect(count('cnn-small', 10)).toBe(32 * 9 + 32 + (64 * 32 * 9 + 64) + (1600 * 128 + 128) + (128 * 10 + 10));
    expect(describeModel('cnn-small', { numClasses: 10, inputShape: [32, 32, 3] }).parameterCount).toBe(
      32 * 27 + 32 + (64 * 32 * 9 + 64) + (64 * 6 * 6 * 128 + 128) + (128 * 10 + 10),
    );
  });

  it('counts BN running statistics as buffers, not parameters', () => {
    const d = describeModel('resnet18', { numClasses: 10 });
    const bnChannels = d.tensors.filter((t) => t.name.endsWith('.running_mean')).reduce((n, t) => n + t.shape[0], 0);
    const bnLayers = d.tensors.filter((t) => t.name.endsWith('.num_batches_tracked')).length;
    expect(bnLayers).toBe(20); // stem + 16 in blocks + 3 shortcuts
    expect(d.bufferCount).toBe(2 * bnChannels + bnLayers);
    expect(d.tensors.find((t) => t.name === 'bn1.num_batches_tracked')).toEqual({
      name: 'bn1.num_batches_tracked',
      role: 'buffer',
      dtype: 'I64',
      shape: [],
    });
  });

  it('uses PyTorch state_dict names, order and layouts', () => {
    const r = describeModel('resnet18', { numClasses: 10 }).tensors.map((t) => t.name);
    expect(r.slice(0, 8)).toEqual([
      'conv1.weight',
      'bn1.weight',
      'bn1.bias',
      'bn1.running_mean',
      'bn1.running_var',
      'bn1.num_batches_tracked',
      'layer1.0.conv1.weight',
      'layer1.0.bn1.weight',
    ]);
    expect(r).toContain('layer2.0.shortcut.0.weight');
    expect(r).toContain('layer2.0.shortcut.1.running_var');
    expect(r).not.toContain('layer1.0.shortcut.0.weight');
    expect(r.slice(-2)).toEqual(['linear.weight', 'linear.bias']);

    const p = describeModel('preact-resnet18', { numClasses: 10 }).tensors.map((t) => t.name);
    expect(p.slice(0, 3)).toEqual(['conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias']);
    expect(p).toContain('layer3.0.shortcut.0.weight');
    expect(p).not.toContain('layer3.0.shortcut.1.weight'); // no BN on the PreAct shortcut
    expect(p.slice(-7)).toEqual([
      'bn.weight',
      'bn.bias',
      'bn.running_mean',
      'bn.running_var',
      'bn.num_batches_tracked',
      'linear.weight',
      'linear.bias',
    ]);

    const w = describeModel('wrn-34-10', { numClasses: 10 }).tensors;
    expect(w.find((t) => t.name === 'block1.layer.0.convShortcut.weight')?.shape).toEqual([160, 16, 1, 1]);
    expect(w.find((t) => t.name === 'block1.layer.4.conv2.weight')?.shape).toEqual([160, 160, 3, 3]);
    expect(w.find((t) => t.name === 'block1.layer.1.convShortcut.weight')).toBeUndefined();
    expect(w.find((t) => t.name === 'fc.weight')?.shape).toEqual([10, 640]);
    // widen 1: the first block has 16 → 16 channels, so no shortcut conv (equalInOut)
    expect(describeModel('wrn-16-1', { numClasses: 10 }).tensors.map((t) => t.name)).not.toContain('block1.layer.0.convShortcut.weight');

    const v = describeModel('vgg16', { numClasses: 100 }).tensors;
    expect(v.find((t) => t.name === 'features.0.weight')?.shape).toEqual([64, 3, 3, 3]);
    expect(v.find((t) => t.name === 'features.0.bias')?.shape).toEqual([64]);
    expect(v.find((t) => t.name === 'features.1.running_mean')?.shape).toEqual([64]);
    expect(v.find((t) => t.name === 'features.7.weight')?.shape).toEqual([128, 64, 3, 3]); // index 6 is the first max-pool
    expect(v.find((t) => t.name === 'features.40.weight')?.shape).toEqual([512, 512, 3, 3]);
    expect(v.find((t) => t.name === 'classifier.weight')?.shape).toEqual([100, 512]);
  });

  it('allocates exactly the described parameters', () => {
    const m = createModel('resnet18', { numClasses: 10, inputShape: [32, 32, 3], seed: 1 });
    expect(countParameters(m)).toBe(11_173_962);
    expect(m.parameters.map((p) => p.name)).toEqual(
      describeModel('resnet18', { numClasses: 10 })
        .tensors.filter((t) => t.role === 'parameter')
        .map((t) => t.name),
    );
    expect(m.buffers.every((b) => !b.variable.trainable)).toBe(true);
    expect(m.parameters.every((p) => p.variable.trainable)).toBe(true);
    m.dispose();
  });

  it('lists every model for K = 10 and 100', () => {
    const rows = listModels();
    expect(rows.length).toBe(MODEL_NAMES.length * 2);
    expect(rows.find((r) => r.name === 'wrn-28-10' && r.classes === 10)?.parameters).toBe(36_479_194);
    expect(rows.find((r) => r.name === 'vgg16' && r.classes === 100)?.parameters).toBe(14_774_436);
  });
});

describe('input shapes and names', () => {
  const shapeError = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(AtflowError);
      return e as AtflowError;
    }
    throw new Error('expected an error');
  };

  it('accepts the sizes whose final map pools to one pixel (as PyTorch does), rejects others clearly', () => {
    expect(describeModel('resnet18', { numClasses: 10, inputShape: [28, 28, 1] }).tensors[0].shape).toEqual([64, 1, 3, 3]);
    const e = shapeError(() => describeModel('resnet18', { numClasses: 10, inputShape: [64, 64, 3] }));
    expect(e.code).toBe('SHAPE');
    expect(e.message).toMatch(/resnet18: input 64×64×3 is not supported: the last feature map is 8×8 .*avg_pool2d\(4\).*32×32/);
    expect(shapeError(() => describeModel('wrn-28-10', { numClasses: 10, inputShape: [28, 28, 1] })).message).toMatch(
      /7×7.*avg_pool2d\(8\)/,
    );
    expect(shapeError(() => describeModel('vgg16', { numClasses: 10, inputShape: [28, 28, 1] })).message).toMatch(/leave a 0×0 map/);
    expect(shapeError(() => describeModel('cnn-small', { numClasses: 10, inputShape: [8, 8, 1] })).message).toMatch(/at least 10×10/);
  });

  it('rejects unknown names with a suggestion, and impossible WRN depths', () => {
    const e = shapeError(() => describeModel('resnet19', { numClasses: 10 }));
    expect(e.code).toBe('UNKNOWN_NAME');
    expect(e.message).toMatch(/unknown model 'resnet19' \(did you mean 'resnet18'\?\)/);
    expect(shapeError(() => describeModel('wrn-30-10', { numClasses: 10 })).message).toMatch(/depth must be 6n\+4/);
    expect(shapeError(() => describeModel('mlp', { numClasses: 1 })).message).toMatch(/numClasses must be an integer ≥ 2/);
  });
});
