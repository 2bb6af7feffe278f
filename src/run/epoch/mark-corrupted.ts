import type { ExampleColumns } from '../../core/records';
import type { RunParts } from '../../config/build-run';

/** Which training inputs inputCorruption replaced, as a mapper that adds `input_corrupted` to training-split rows. */
export function corruptionMarker(parts: RunParts): (c: ExampleColumns) => ExampleColumns {
  const mask = corruptionMask(parts);
  return (c) =>
    parts.corrupted.length && (c.split ?? 'train') === 'train' ? { ...c, input_corrupted: Uint8Array.from(c.example, (i) => mask[i]) } : c;
}

/** 1 for each training example whose input was corrupted (labels.parquet's input_corrupted). */
export function corruptionMask(parts: RunParts): Uint8Array {
  const mask = new Uint8Array(parts.labels.labelsUsed.length);
  for (const i of parts.corrupted) mask[i] = 1;
  return mask;
}
