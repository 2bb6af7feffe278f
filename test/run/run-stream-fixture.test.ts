import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { duck, lit } from '../logs/duck';
import { fixtureFiles, runFixture } from './fixtures/run-stream';

/**
 * A run's tables are the same, value for value and in file order, as the ones the code of main wrote
 * before the run became one stream of epoch operators (test/run/fixtures/run-stream/, made by
 * fixtures/run-stream.ts: a tiny robust-overfitting-cpu PGD-AT+TE run on the cpu backend with every
 * epoch-level step switched on).
 *
 * Not compared, because they differ between two runs of the same code: the wall-clock columns
 * (epochs.wall_ms / eval_ms, steps.ms, and the `time` stamp of both) and the `atflow.started_at` file
 * metadata. Because of those the files' bytes themselves differ run to run, so every other column is
 * compared exactly (floats as DuckDB reads them: the same float32/float64, NaN included), along with
 * each file's schema (names and types) and every other key of its metadata.
 */
const WALL_CLOCK: Record<string, string[]> = { 'epochs.parquet': ['wall_ms', 'eval_ms', 'time'], 'steps.parquet': ['ms', 'time'] };
const FIXTURE = path.join(__dirname, 'fixtures', 'run-stream');

async function schema(file: string): Promise<Record<string, unknown>[]> {
  return duck(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(${lit(file)}))`);
}
async function metadata(file: string): Promise<Record<string, unknown>[]> {
  return duck(
    `SELECT key::VARCHAR AS k, value::VARCHAR AS v FROM parquet_kv_metadata(${lit(file)}) WHERE key::VARCHAR <> 'atflow.started_at' ORDER BY k`,
  );
}
async function values(file: string, exclude: readonly string[]): Promise<Record<string, unknown>[]> {
  const except = exclude.length ? ` EXCLUDE (${exclude.join(', ')})` : '';
  // file order, not sorted: the order rows are written in is part of the table
  return duck(`SELECT *${except} FROM read_parquet(${lit(file)}, hive_partitioning = false)`);
}

describe('the run stream writes the tables the old executeRun wrote (fixture)', () => {
  jest.setTimeout(300_000);
  let runDir: string;
  beforeAll(async () => {
    runDir = await runFixture(fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-run-stream-')));
  });

  it('writes the same files', () => {
    expect(fixtureFiles(runDir)).toEqual(fixtureFiles(FIXTURE));
  });

  it.each(fixtureFiles(FIXTURE).filter((f) => f.endsWith('.parquet')))('%s: same schema, metadata and values', async (f) => {
    const [now, then] = [path.join(runDir, f), path.join(FIXTURE, f)];
    expect(await schema(now)).toEqual(await schema(then));
    expect(await metadata(now)).toEqual(await metadata(then));
    const rows = await values(then, WALL_CLOCK[f] ?? []);
    expect(rows.length).toBeGreaterThan(0);
    expect(await values(now, WALL_CLOCK[f] ?? [])).toEqual(rows);
  });

  it('final_eval.json is byte-for-byte the same', () => {
    expect(fs.readFileSync(path.join(runDir, 'final_eval.json'), 'utf8')).toBe(
      fs.readFileSync(path.join(FIXTURE, 'final_eval.json'), 'utf8'),
    );
  });
});
