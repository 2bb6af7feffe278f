import * as fs from 'fs';
import { AtflowError } from '../core/errors';
import type { RunFolder } from '../store/run-folder';
import { readParquetTable } from './parquet-writer';

/**
 * What a finished run's tables must hold, checked before `_SUCCESS` is written: every file the run
 * keeps is readable, `epochs` has each epoch 1 … last once, `steps` has each epoch's steps 0 … n−1
 * once, and `examples` has a training partition for each epoch with as many rows as the others. A file
 * damaged or removed by hand after its epoch was checkpointed cannot be written again by a resume; this
 * says which rows are missing instead of letting the run end as if it were complete.
 */
export interface TableExpectations {
  /** The run's last epoch (epochs 1 … lastEpoch must be there). */
  readonly lastEpoch: number;
  /** Steps of the epochs this session trained (epoch-start events); other epochs: the usual count. */
  readonly stepsPerEpoch: ReadonlyMap<number, number>;
  /** Examples of the training split (labels.parquet's rows). */
  readonly trainSize: number | null;
}

function ranges(xs: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    out.push(i === j ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

function mode(xs: Iterable<number>): number | null {
  const count = new Map<number, number>();
  for (const x of xs) count.set(x, (count.get(x) ?? 0) + 1);
  let best: number | null = null;
  for (const [x, n] of count) if (best === null || n > count.get(best)! || (n === count.get(best)! && x > best)) best = x;
  return best;
}

/** The named columns of a file as numbers, or a problem in words (an unreadable file). */
function column(file: string, names: string[], problems: string[]): number[][] | null {
  try {
    const t = readParquetTable(file, names);
    return names.map((n) => {
      const v = t.getChild(n);
      return v ? Array.from({ length: t.numRows }, (_, i) => Number(v.get(i))) : [];
    });
  } catch (e) {
    problems.push((e as Error).message);
    return null;
  }
}

export function checkRunTables(folder: RunFolder, expected: TableExpectations): void {
  const problems: string[] = [];
  const last = expected.lastEpoch;
  const all = Array.from({ length: last }, (_, i) => i + 1);
  const present = (file: string) => fs.existsSync(file);

  // epochs: each epoch once
  const epochsFile = folder.tableFile('epochs');
  if (!present(epochsFile)) problems.push(`${epochsFile} is missing`);
  else {
    const cols = column(epochsFile, ['epoch'], problems);
    if (cols) {
      const seen = new Map<number, number>();
      for (const e of cols[0]) seen.set(e, (seen.get(e) ?? 0) + 1);
      const missing = all.filter((e) => !seen.has(e));
      const twice = [...seen].filter(([, n]) => n > 1).map(([e]) => e);
      if (missing.length) problems.push(`epochs.parquet has no row for epoch ${ranges(missing)}`);
      if (twice.length) problems.push(`epochs.parquet holds epoch ${ranges(twice.sort((a, b) => a - b))} more than once`);
    }
  }

  // steps: each epoch's steps 0 … n−1 once
  const stepsFile = folder.tableFile('steps');
  if (present(stepsFile)) {
    const cols = column(stepsFile, ['epoch', 'step'], problems);
    if (cols) {
      const byEpoch = new Map<number, number[]>();
      cols[0].forEach((e, i) => (byEpoch.get(e) ?? byEpoch.set(e, []).get(e)!).push(cols[1][i]));
      const usual = mode(expected.stepsPerEpoch.values()) ?? mode([...byEpoch.values()].map((s) => s.length));
      for (const e of all) {
        const want = expected.stepsPerEpoch.get(e) ?? usual ?? 0;
        const got = byEpoch.get(e) ?? [];
        const have = new Set(got);
        const lacking = Array.from({ length: want }, (_, i) => i).filter((s) => !have.has(s));
        if (got.length === 0 && want > 0) problems.push(`steps.parquet has no rows for epoch ${e} (expected steps 0-${want - 1})`);
        else if (lacking.length)
          problems.push(
            `steps.parquet lacks epoch ${e}'s step${lacking.length > 1 ? 's' : ''} ${ranges(lacking)} (${got.length} of ${want} rows)`,
          );
        else if (have.size !== got.length || got.length !== want)
          problems.push(`steps.parquet holds ${got.length} rows for epoch ${e}, expected ${want}`);
      }
    }
  } else if (all.length > 0) problems.push(`${stepsFile} is missing`);

  // examples: a training partition per epoch (when the run logs examples at all), all readable
  const epochsWithExamples = folder.exampleEpochs();
  if (epochsWithExamples.length > 0) {
    const trainRows = new Map<number, number>();
    for (const e of all) {
      const parts = folder.exampleParts(e);
      if (parts.length === 0) {
        problems.push(`${folder.exampleEpochDir(e)} is missing (epoch ${e}'s example rows)`);
        continue;
      }
      let rows = 0;
      let train = false;
      for (const p of parts) {
        const cols = column(p, ['epoch'], problems);
        if (cols && /\/part-train(-\d+)?\.parquet$/.test(p.replace(/\\/g, '/'))) {
          train = true;
          rows += cols[0].length;
        }
      }
      if (!train) problems.push(`${folder.exampleEpochDir(e)} has no part-train.parquet (epoch ${e}'s training rows)`);
      else trainRows.set(e, rows);
    }
    const usual = expected.trainSize ?? mode(trainRows.values());
    for (const [e, n] of trainRows)
      if (usual !== null && n !== usual && n < usual) problems.push(`epoch ${e} has ${n} training rows in examples, expected ${usual}`);
  }

  // the other tables: readable
  for (const t of ['events', 'complexity', 'labels'] as const) {
    const file = folder.tableFile(t);
    if (present(file)) column(file, t === 'labels' ? ['example'] : ['epoch'], problems);
  }

  if (problems.length) {
    const shown = problems.slice(0, 8);
    throw new AtflowError(
      'DATA_FILE',
      `${folder.dir}: the run's tables are damaged or incomplete, so ` +
        `_SUCCESS is not written: ` +
        `${shown.join('; ')}${problems.length > shown.length ? `; and ${problems.length - shown.length} more` : ''}. ` +
        `Rows of epochs that were checkpointed cannot be written again by ` +
        `--resume: run the config again into a new folder`,
      { runDir: folder.dir, problems },
    );
  }
}
