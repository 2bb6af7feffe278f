import { unknownName } from '../core/errors';
import { createCifar10Source, createCifar100Source, type Cifar100SourceOptions, type CifarSourceOptions } from './cifar';
import { createFashionMnistSource, createIdxSource, type IdxSourceOptions } from './idx';
import { createMnistSource, type MnistSourceOptions } from './mnist';
import type { Source } from './source';
import { createSvhnSource, type SvhnSourceOptions } from './svhn';
import { createSyntheticSource, type SyntheticSourceOptions } from './synthetic';

/** Options of each registered source, by name. */
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

const FACTORIES: { readonly [N in SourceName]: (options: SourceOptionsByName[N]) => Source } = {
  mnist: createMnistSource,
  'fashion-mnist': createFashionMnistSource,
  idx: createIdxSource,
  cifar10: createCifar10Source,
  cifar100: createCifar100Source,
  svhn: createSvhnSource,
  synthetic: createSyntheticSource,
};

export const SOURCE_NAMES: readonly SourceName[] = Object.keys(FACTORIES) as SourceName[];

/** A source by registry name (reads its files now; synchronous). Unknown name: an error listing the known ones. */
export function createSource<N extends SourceName>(name: N, options?: SourceOptionsByName[N]): Source;
export function createSource(name: string, options?: Record<string, unknown>): Source;
export function createSource(name: string, options: Record<string, unknown> = {}): Source {
  if (!Object.prototype.hasOwnProperty.call(FACTORIES, name)) throw unknownName('dataset', name, SOURCE_NAMES);
  return (FACTORIES[name as SourceName] as (o: unknown) => Source)(options);
}

export * from './source';
export * from './splits';
export * from './batch-plans';
export * from './label-noise';
export * from './input-corruption';
export { createMnistSource, MNIST_TEST_PER_CLASS, type MnistSourceOptions } from './mnist';
export * from './idx';
export * from './cifar';
export * from './svhn';
export * from './synthetic';
export { readMatV5, type MatArray } from './mat-v5';
export { readDataFile, locateFiles, dataRoot } from './data-files';
