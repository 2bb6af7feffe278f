import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ParquetRunWriter } from '../../src/logs/parquet-sink';
import { RunTableWriter, type RunTableFormat, type TableRows } from '../../src/logs/run-table-writer';
import type { TableName } from '../../src/logs/tables';
import { duck, lit } from './duck';
import { syntheticRun } from './synthetic-run';

/**
 * The run-table writer routes events to rows once, for every format: a format of one's own (here one that
 * only counts what it is handed) sees exactly the rows the Parquet format stores, table by table, as DuckDB
 * reads them back from the run folder; and the same resume carry (the epochs before the resumed one).
 */
class CountingFormat implements RunTableFormat<Record<string, number>> {
  readonly name = 'counting';
  readonly rows: Record<string, number> = {};
  readonly durable: number[] = [];
  kept: number[] = [];
  begin(_start: unknown, _folder: unknown, carry: { keepEpoch: (e: number) => boolean; fresh: boolean }): void {
    this.kept = carry.fresh ? [] : [1, 2, 3, 4].filter(carry.keepEpoch);
  }
  append(r: TableRows): void {
    this.rows[r.table] = (this.rows[r.table] ?? 0) + r.count;
  }
  epochDurable(epoch: number): void {
    this.durable.push(epoch);
  }
  end(): void {}
  close(): void {}
  result(): Record<string, number> {
    return this.rows;
  }
}

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-rtw-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a format of its own gets the rows the Parquet format stores, and an epoch made durable after each epoch-end', async () => {
  const runDir = path.join(dir, 'run');
  const events = syntheticRun({ runDir, n: 120, epochs: 3, batch: 32 });
  const parquet = new ParquetRunWriter({ now: () => 0 });
  const counting = new CountingFormat();
  const writer = new RunTableWriter(counting);
  for (const ev of events) {
    await parquet.handle(ev);
    await writer.handle(ev);
  }
  await parquet.close();
  const stored: Record<string, number> = {};
  for (const t of ['labels', 'events', 'epochs', 'steps', 'complexity'] as TableName[]) {
    const file = path.join(runDir, `${t}.parquet`);
    if (fs.existsSync(file)) stored[t] = Number((await duck(`SELECT count(*) AS n FROM read_parquet(${lit(file)})`))[0].n);
  }
  stored.examples = Number(
    (await duck(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(runDir, 'examples', '*', '*.parquet'))})`))[0].n,
  );
  expect(counting.result()).toEqual(stored);
  expect(counting.durable).toEqual([1, 2, 3]);
});

test('a resumed run: every format is told to keep the epochs before the resumed one, a fresh start nothing', async () => {
  const events = syntheticRun({ runDir: path.join(dir, 'resumed'), n: 60, epochs: 2, batch: 30 });
  const start = events[0] as Extract<(typeof events)[number], { type: 'run-start' }>;
  const resumed = new CountingFormat();
  await new RunTableWriter(resumed).handle({ ...start, firstEpoch: 3 });
  expect(resumed.kept).toEqual([1, 2]);
  const fresh = new CountingFormat();
  await new RunTableWriter(fresh).handle({ ...start, firstEpoch: 1 });
  expect(fresh.kept).toEqual([]);
});
