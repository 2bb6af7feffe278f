import { AtflowError, didYouMean, unknownName } from '../core/errors';
import { SPLIT_OPTION_KEYS } from './splits';
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

const IDX_FILE_KEYS = ['dir', 'trainImages', 'trainLabels', 'testImages', 'testLabels'] as const;
/** The options each source reads: anything else (a typo such as "dri") would be silently ignored. */
const OPTION_KEYS: { readonly [N in SourceName]: readonly (keyof SourceOptionsByName[N] & string)[] } = {
  mnist: SPLIT_OPTION_KEYS,
  'fashion-mnist': [...SPLIT_OPTION_KEYS, ...IDX_FILE_KEYS],
  idx: [...SPLIT_OPTION_KEYS, ...IDX_FILE_KEYS, 'name', 'numClasses', 'classNames'],
  cifar10: [...SPLIT_OPTION_KEYS, 'dir'],
  cifar100: [...SPLIT_OPTION_KEYS, 'dir', 'labels'],
  svhn: [...SPLIT_OPTION_KEYS, 'dir'],
  synthetic: ['numClasses', 'imageShape', 'trainSize', 'testSize', 'valSize', 'noise', 'separation', 'seed'],
};

/** A source by registry name (reads its files now; synchronous). Unknown name: an error listing the known ones. */
export function createSource<N extends SourceName>(name: N, options?: SourceOptionsByName[N]): Source;
export function createSource(name: string, options?: Record<string, unknown>): Source;
export function createSource(name: string, options: Record<string, unknown> = {}): Source {
  if (!Object.prototype.hasOwnProperty.call(FACTORIES, name)) throw unknownName('dataset', name, SOURCE_NAMES);
  const allowed: readonly string[] = OPTION_KEYS[name as SourceName];
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const hint = didYouMean(key, allowed);
    throw new AtflowError('CONFIG', `source '${name}': unknown option '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}; options: ${allowed.join(', ')}`, {
      field: key,
      allowed: [...allowed],
    });
  }
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
