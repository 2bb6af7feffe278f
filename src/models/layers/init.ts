import type { InitRule } from './slot';

/**
 * The initialisation rules of docs/algorithms.md §3, as bounds and standard deviations.
 *
 * PyTorch's default for Conv2d and Linear weights is kaiming_uniform_(a=√5): gain = √(2/(1+5)), so
 * bound = gain·√3/√fan_in = 1/√fan_in; the bias is U(−1/√fan_in, 1/√fan_in) too.
 */
export function pytorchDefaultWeight(fanIn: number): InitRule {
  return { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) };
}

export function pytorchDefaultBias(fanIn: number): InitRule {
  return { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) };
}

/** WideResNet (TRADES-style) conv rule: N(0, 2/(kh·kw·out_channels)), a fan-out Kaiming normal. */
export function wrnConvWeight(kernelH: number, kernelW: number, outChannels: number): InitRule {
  return { kind: 'normal', std: Math.sqrt(2 / (kernelH * kernelW * outChannels)) };
}

export const ZEROS: InitRule = { kind: 'constant', value: 0 };
export const ONES: InitRule = { kind: 'constant', value: 1 };

/** Which convention a layer follows: PyTorch defaults, or the WRN rule of docs/algorithms.md §3.2. */
export type InitScheme = 'pytorch' | 'wrn';
