import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { RunEvent } from '../../src/core/run-event';
import { ParquetRunWriter } from '../../src/logs/parquet-sink';
import { isError, type LogsAsRead, readersPython, readLogs, type ReaderResult, type TableToRead } from './readers/log-readers';
import { syntheticRun } from './synthetic-run';
import { evalTiny, runTiny, tinyConfig, tinyOverrides } from './tiny-runs';

/**
 * The README promises that pandas, pyarrow, polars and DuckDB read the logs. Here each of them reads every
 * table of a real (tiny) run with the call a user types first (test/logs/readers/read_logs.py lists them),
 * and every reader must return the same rows, with `epoch` an integer column. The examples folder was the
 * one that broke: pandas / pyarrow refused it (`epoch=NNNN` folders made a dictionary-typed `epoch` that
 * clashed with the files' own int32 `epoch`) and DuckDB typed it as text ('0001').
 */
const EPOCHS = 6;
const TRAIN = 64;
const EVAL = 'final-train';
const { python, why } = readersPython();
const readersTest = python ? test : test.skip;
if (!python) console.warn(`log-readers.test: skipped, no Python readers: ${why} (npm run setup:python)`);

let dir: string;
let runDir: string;
let read: LogsAsRead;

beforeAll(async () => {
  if (!python) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-readers-'));
  const cfg = tinyConfig(path.join(dir, 'configs'), 'ro', 'robust-overfitting-cpu.json', {
    ...tinyOverrides({ epochs: EPOCHS, trainSize: TRAIN }),
    logging: { arrow: true, complexityEvery: 3 },
  });
  [runDir] = await runTiny(cfg, path.join(dir, 'runs'), 'pgd-at');
  await evalTiny(runDir, ['--checkpoint', 'final', '--split', 'train', '--n', '32', '--name', EVAL]);
  const tables: TableToRead[] = [
    { name: 'examples', kind: 'dataset', path: path.join(runDir, 'examples') },
    ...['labels', 'events', 'epochs', 'steps', 'complexity'].map((t) => ({
      name: t,
      kind: 'file' as const,
      path: path.join(runDir, `${t}.parquet`),
    })),
    { name: 'robustness', kind: 'file', path: path.join(runDir, 'eval', EVAL, 'robustness.parquet') },
    ...['examples', 'labels', 'events', 'epochs', 'steps', 'complexity'].map((t) => ({
      name: `arrow/${t}`,
      kind: 'stream' as const,
      path: path.join(runDir, 'arrow', `${t}.arrows`),
    })),
  ];
  read = readLogs(python, tables);
}, 600_000);
afterAll(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

/** The hidden temp files of writes in progress under `dir`. */
function tempFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => /(^|\/)\.[^/]*\.tmp$/.test(f)).map((f) => path.join(dir, f));
}

/** Every reader's result for a table; fails naming the readers that failed and why. */
function results(table: string): Array<[string, ReaderResult]> {
  const got = Object.entries(read.tables[table]);
  expect(got.filter(([, r]) => isError(r)).map(([call, r]) => `${call}: ${(r as { error: string }).error}`)).toEqual([]);
  return got as Array<[string, ReaderResult]>;
}

/** Same rows (digest over normalised values), same columns, and an integer `epoch` from every reader. */
function expectAgreement(table: string): ReaderResult {
  const got = results(table);
  const [, first] = got[0];
  for (const [call, r] of got) {
    expect({ call, rows: r.rows, columns: r.columns, digest: r.digest }).toEqual({
      call,
      rows: first.rows,
      columns: first.columns,
      digest: first.digest,
    });
    if (r.columns.includes('epoch'))
      expect({ call, epoch: r.epoch_type, integer: r.epoch_is_integer }).toEqual({ call, epoch: r.epoch_type, integer: true });
  }
  expect(first.rows).toBeGreaterThan(0);
  return first;
}

describe('each reader’s obvious call on a real run folder', () => {
  readersTest(
    'examples/: pandas.read_parquet(dir), pyarrow.parquet.read_table(dir), polars.read_parquet(dir) and DuckDB return the same rows, epoch an integer',
    () => {
      const r = expectAgreement('examples');
      expect(r.epochs).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
      // the train phase alone is TRAIN rows per epoch; eval rows (training and test split) come on top
      expect(r.rows).toBeGreaterThan(TRAIN * EPOCHS);
      console.log(
        `log readers: ${JSON.stringify(read.versions)}; examples/: ${r.rows} rows, epoch as ${Object.values(read.tables.examples)
          .map((x) => (x as ReaderResult).epoch_type)
          .join(' / ')}`,
      );
    },
  );

  readersTest.each(['labels', 'events', 'epochs', 'steps', 'complexity', 'robustness'])(
    '%s.parquet: the four readers return the same rows',
    (table) => {
      const r = expectAgreement(table);
      if (table === 'epochs') expect(r.rows).toBe(EPOCHS);
      if (table === 'labels') expect(r.rows).toBe(TRAIN);
      if (table === 'robustness') expect(r.rows).toBe(32);
    },
  );

  readersTest('arrow/*.arrows: pyarrow (and pandas through it) and polars read the streams, and they hold the Parquet tables’ rows', () => {
    for (const t of ['examples', 'labels', 'events', 'epochs', 'steps', 'complexity']) {
      const r = expectAgreement(`arrow/${t}`);
      const parquet = Object.values(read.tables[t])[0] as ReaderResult;
      expect({ t, rows: r.rows, columns: r.columns }).toEqual({ t, rows: parquet.rows, columns: parquet.columns });
      // epochs and steps carry each sink's own clock in `time`; every other table is the same row for row
      if (t !== 'epochs' && t !== 'steps') expect({ t, digest: r.digest }).toEqual({ t, digest: parquet.digest });
    }
  });
});

describe('while a run is being written', () => {
  readersTest('every reader reads examples/ in the middle of an epoch: the rows of the finished epochs, no half-written file', async () => {
    const live = path.join(dir, 'live');
    const events: RunEvent[] = syntheticRun({ runDir: live, runId: 'live', n: 2000, epochs: 3, batch: 500 });
    // small row groups: the open part already holds bytes on disk, as a long epoch's does
    const writer = new ParquetRunWriter({ now: () => 0, rowGroupSize: 250 });
    // up to the second batch of epoch 3: its part file is open (being written) while the readers look
    const cut = events.findIndex(
      (e, i) =>
        e.type === 'examples' && e.columns.epoch === 3 && events.slice(0, i).some((p) => p.type === 'examples' && p.columns.epoch === 3),
    );
    for (const ev of events.slice(0, cut + 1)) await writer.handle(ev);
    const temp = () => tempFiles(live).find((f) => path.basename(f).startsWith('.part-train.parquet.'));
    for (let t = 0; t < 100 && !(temp() && fs.statSync(temp()!).size > 0); t++) await new Promise((r) => setTimeout(r, 100));
    expect(fs.statSync(temp()!).size).toBeGreaterThan(0);
    const mid = readLogs(python!, [{ name: 'examples', kind: 'dataset', path: path.join(live, 'examples') }]);
    await writer.abort();
    const got = Object.entries(mid.tables.examples);
    expect(got.filter(([, r]) => isError(r)).map(([call, r]) => `${call}: ${(r as { error: string }).error}`)).toEqual([]);
    for (const [call, r] of got as Array<[string, ReaderResult]>)
      expect({ call, epochs: r.epochs, rows: r.rows }).toEqual({ call, epochs: [1, 2], rows: 2 * 2 * 2000 });
  });
});
