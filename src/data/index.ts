import type { Cifar100SourceOptions, CifarSourceOptions } from './cifar';
import type { IdxSourceOptions } from './idx';
import type { MnistSourceOptions } from './mnist';
import type { SvhnSourceOptions } from './svhn';
import type { SyntheticSourceOptions } from './synthetic';

/** Options of each built-in source, by name (the sources themselves are registry entries: createSource looks them up there). */
export interface SourceOptionsByName {
  mnist: MnistSourceOptions;
  'fashion-mnist': Omit<IdxSourceOptions, 'name' | 'numClasses' | 'classNames'>;
  idx: IdxSourceOptions;
  cifar10: CifarSourceOptions;
  cifar100: Cifar100SourceOptions;
  svhn: SvhnSourceOptions;
  synthetic: SyntheticSourceOptions;
}
export type SourceName = keyof SourceOptionsByName;

export * from './source';
export * from './splits';
export * from './batch-plans';
export * from './label-noise';
export * from './input-corruption';
export { createMnistSource, mnistSourceEntry, MNIST_TEST_PER_CLASS, type MnistSourceOptions } from './mnist';
export * from './idx';
export * from './cifar';
export * from './svhn';
export * from './synthetic';
export { readMatV5, type MatArray } from './mat-v5';
export { readDataFile, locateFiles, dataRoot } from './data-files';
