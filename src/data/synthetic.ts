import { AtflowError } from '../core/errors';
import { deriveSeed, Rng } from '../core/rng';
import { MemorySource, type Source, type SplitStorage, iota } from './source';
import { deriveSplits } from './splits';
import type { NamedPart } from '../core/named-part';
import { z } from 'zod';

/**
 * Class-conditional Gaussian images of any shape, for tests and benchmarks: class c has a mean image
 * μ_c (pixels 0.5 + separation·N(0,1), seeded by (seed, 'synthetic-mean', c)); example i of a split has
 * label i mod K and pixels μ_label + noise·N(0,1) (seeded by (seed, 'synthetic-example', split, i)),
 * clipped to [0, 1] and stored as round(255·v) like every other source. Every example is a pure
 * function of (seed, split, index), so sizes can change without changing the examples.
 */
export interface SyntheticSourceOptions {
  /** Default 10. */
  readonly numClasses?: number;
  /** [H, W, C]; default [32, 32, 3]. */
  readonly imageShape?: readonly [number, number, number];
  /** Training examples (after carving `valSize`). Default 1,000. */
  readonly trainSize?: number;
  /** Default 200. */
  readonly testSize?: number;
  /** Extra generated training examples carved into a 'val' split. Default 0. */
  readonly valSize?: number;
  /** Per-pixel std of examples around their class mean. Default 0.2. */
  readonly noise?: number;
  /** Per-pixel std of the class means around 0.5. Default 0.15. */
  readonly separation?: number;
  readonly seed?: number;
}

function positiveInt(field: string, v: number, min = 1): number {
  if (!Number.isInteger(v) || v < min)
    throw new AtflowError('CONFIG', `synthetic: ${field} = ${v}: expected an integer >= ${min}`, { field });
  return v;
}

function nonNegative(field: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0))
    throw new AtflowError('CONFIG', `synthetic: ${field} = ${v}: expected a finite number >= 0`, { field });
  return v;
}

export function createSyntheticSource(options: SyntheticSourceOptions = {}): Source {
  const numClasses = positiveInt('numClasses', options.numClasses ?? 10, 2);
  const shape = options.imageShape ?? [32, 32, 3];
  if (shape.length !== 3) throw new AtflowError('CONFIG', `synthetic: imageShape = [${shape.join(', ')}]: expected [H, W, C]`);
  shape.forEach((d, i) => positiveInt(`imageShape[${i}]`, d));
  const valSize = positiveInt('valSize', options.valSize ?? 0, 0);
  const trainSize = positiveInt('trainSize', options.trainSize ?? 1000);
  const testSize = positiveInt('testSize', options.testSize ?? 200);
  const noise = nonNegative('noise', options.noise ?? 0.2);
  const separation = nonNegative('separation', options.separation ?? 0.15);
  const seed = options.seed ?? 0;
  const per = shape[0] * shape[1] * shape[2];

  const means: Float32Array[] = [];
  for (let c = 0; c < numClasses; c++) {
    means.push(new Rng(deriveSeed(seed, 'synthetic-mean', c)).fillNormal(new Float32Array(per), 0.5, separation));
  }
  const generate = (splitCode: number, n: number): SplitStorage => {
    const images = new Uint8Array(n * per);
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const label = i % numClasses;
      labels[i] = label;
      const rng = new Rng(deriveSeed(seed, 'synthetic-example', splitCode, i));
      const mu = means[label];
      const off = i * per;
      for (let k = 0; k < per; k++) {
        const v = mu[k] + noise * rng.normal();
        images[off + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
      }
    }
    return { size: n, images, labels, sourceIndex: iota(n) };
  };
  return new MemorySource(
    {
      name: 'synthetic',
      numClasses,
      imageShape: [shape[0], shape[1], shape[2]],
      defaultAugment: false,
      origin: `generated (seed ${seed}, noise ${noise}, separation ${separation})`,
    },
    deriveSplits('synthetic', { train: generate(0, trainSize + valSize), test: generate(1, testSize) }, per, { valSize, seed }),
  );
}

/** The registry's 'synthetic' source (ranges are checked by createSyntheticSource, naming the option). */
export const syntheticSourceEntry: NamedPart<Source, SyntheticSourceOptions> = {
  name: 'synthetic',
  options: z
    .object({
      numClasses: z.number().optional(),
      imageShape: z.tuple([z.number(), z.number(), z.number()]).optional(),
      trainSize: z.number().optional(),
      testSize: z.number().optional(),
      valSize: z.number().optional(),
      noise: z.number().optional(),
      separation: z.number().optional(),
      seed: z.number().optional(),
    })
    .strict(),
  create: (o) => createSyntheticSource(o),
};
