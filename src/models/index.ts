import { unknownName } from '../core/errors';
import type { Architecture, ArchitectureOptions } from './architecture';
import { cnnSmall } from './cnn-small';
import { mlp } from './mlp';
import { Network } from './network';
import { preactResnet18 } from './preact-resnet18';
import { resnet18 } from './resnet18';
import { vgg16 } from './vgg16';
import { parseWrnName, wideResnet } from './wide-resnet';
import { slotSize } from './layers/slot';

export { Network } from './network';
export type { Architecture, ArchitectureOptions } from './architecture';
export { saveWeights, loadWeights, stateDictOf, loadStateDict, checkKeyMap } from './checkpoint';
export type { StateDictEntry, KeyMap, LoadOptions, LoadReport } from './checkpoint';

/** The registered names. Any `wrn-D-K` (D = 6n+4) is accepted as well; these two are the paper's. */
export const MODEL_NAMES = ['mlp', 'cnn-small', 'resnet18', 'preact-resnet18', 'wrn-34-10', 'wrn-28-10', 'vgg16'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface CreateModelOptions {
  readonly numClasses: number;
  /** [H, W, C]; defaults to defaultInputShape(name). */
  readonly inputShape?: readonly [number, number, number];
  /** Initialisation seed: slot i draws from new Rng(deriveSeed(seed, 'init', i)). */
  readonly seed: number;
}

/** The shape a model is listed and documented with: 28×28×1 (MNIST) for mlp / cnn-small, else 32×32×3 (CIFAR, SVHN). */
export function defaultInputShape(name: string): [number, number, number] {
  return name === 'mlp' || name === 'cnn-small' ? [28, 28, 1] : [32, 32, 3];
}

function architecture(name: string, opts: ArchitectureOptions): Architecture {
  switch (name) {
    case 'mlp':
      return mlp(opts);
    case 'cnn-small':
      return cnnSmall(opts);
    case 'resnet18':
      return resnet18(opts);
    case 'preact-resnet18':
      return preactResnet18(opts);
    case 'vgg16':
      return vgg16(opts);
  }
  const wrn = parseWrnName(name);
  if (wrn) return wideResnet(wrn.depth, wrn.widen, opts);
  throw unknownName('model', name, [...MODEL_NAMES, 'wrn-D-K']);
}

export interface TensorDescription {
  /** PyTorch state_dict name. */
  readonly name: string;
  readonly role: 'parameter' | 'buffer';
  /** As stored in safetensors files: F32, or I64 for num_batches_tracked. */
  readonly dtype: 'F32' | 'I64';
  /** PyTorch layout (conv OIHW, linear [out, in]). */
  readonly shape: readonly number[];
}

export interface ModelDescription {
  readonly name: string;
  readonly numClasses: number;
  readonly inputShape: readonly [number, number, number];
  /** state_dict order. */
  readonly tensors: readonly TensorDescription[];
  /** Learnable weights plus BN γ/β; running statistics excluded (the convention of docs/algorithms.md §3). */
  readonly parameterCount: number;
  /** Elements of the buffers (running_mean, running_var, num_batches_tracked). */
  readonly bufferCount: number;
}

/** A model's tensors and counts, without allocating any tensor (cheap for WRN-34-10). */
export function describeModel(
  name: string,
  opts: { numClasses: number; inputShape?: readonly [number, number, number] },
): ModelDescription {
  const arch = architecture(name, { numClasses: opts.numClasses, inputShape: opts.inputShape ?? defaultInputShape(name) });
  const tensors: TensorDescription[] = arch.slots.map((s) => ({
    name: s.name,
    role: s.role,
    dtype: s.dtype === 'int32' ? 'I64' : 'F32',
    shape: [...s.shape],
  }));
  const count = (role: 'parameter' | 'buffer') => tensors.filter((t) => t.role === role).reduce((n, t) => n + slotSize(t.shape), 0);
  return {
    name: arch.name,
    numClasses: arch.numClasses,
    inputShape: arch.inputShape,
    tensors,
    parameterCount: count('parameter'),
    bufferCount: count('buffer'),
  };
}

/** Builds and initialises a model (PyTorch-default init, or the WRN rule for wrn-*). */
export function createModel(name: string, opts: CreateModelOptions): Network {
  const arch = architecture(name, { numClasses: opts.numClasses, inputShape: opts.inputShape ?? defaultInputShape(name) });
  return new Network(arch, opts.seed);
}

export interface ModelListing {
  readonly name: string;
  readonly classes: number;
  readonly parameters: number;
  readonly inputShape: readonly [number, number, number];
}

/** One entry per (registered name, K), with each model's default input shape. */
export function listModels(classes: readonly number[] = [10, 100]): ModelListing[] {
  const out: ModelListing[] = [];
  for (const name of MODEL_NAMES) {
    for (const k of classes) {
      const d = describeModel(name, { numClasses: k });
      out.push({ name, classes: k, parameters: d.parameterCount, inputShape: d.inputShape });
    }
  }
  return out;
}
