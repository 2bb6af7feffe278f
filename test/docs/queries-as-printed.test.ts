import { DuckDBInstance } from '@duckdb/node-api';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readersPython } from '../logs/readers/log-readers';
import { evalTiny, REPO, runTiny, tinyConfig, tinyOverrides } from '../logs/tiny-runs';

/**
 * Every SQL block of the README and docs/queries.md, pasted exactly as printed into DuckDB, run from a folder
 * whose `runs/<run_id>` is a real (tiny) run, with the `atflow eval` folder the AutoAttack queries name. The
 * docs say "runs as-is": a placeholder left in a query (`<data_map>`), a missing option or a column typed
 * as text (epoch '0006') fails here. The README's pandas lines run the same way in Python and must
 * agree with its SQL.
 */
const DOCS = ['README.md', path.join('docs', 'queries.md')];
/** Columns that hold an epoch: DuckDB must hand them back as integers. */
const EPOCH_COLUMNS = new Set(['epoch', 'best_epoch', 'final_epoch', 'first_learned']);

function blocks(doc: string, lang: string): string[] {
  const md = fs.readFileSync(path.join(REPO, doc), 'utf8');
  return [...md.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
}

let ws: string;
beforeAll(async () => {
  ws = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-docq-'));
  const cfg = tinyConfig(path.join(ws, 'configs'), 'ro', 'robust-overfitting-cpu.json', tinyOverrides({ epochs: 6, trainSize: 96 }));
  const [runDir] = await runTiny(cfg, path.join(ws, 'out'), 'pgd-at');
  await evalTiny(runDir, ['--checkpoint', 'final', '--split', 'train', '--n', '32', '--name', 'final-train']);
  // the run folder under the very name the docs print
  fs.mkdirSync(path.join(ws, 'runs'));
  fs.symlinkSync(runDir, path.join(ws, 'runs', '<run_id>'));
}, 600_000);
afterAll(() => fs.rmSync(ws, { recursive: true, force: true }));

/** Runs one block in a fresh DuckDB whose relative paths resolve against the workspace. */
async function paste(sql: string): Promise<{ names: string[]; types: string[]; rows: Record<string, unknown>[] }> {
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  try {
    await con.run(`SET file_search_path = '${ws.replace(/'/g, "''")}'`);
    const r = await con.runAndReadAll(sql);
    return { names: r.columnNames(), types: r.columnTypes().map(String), rows: r.getRowObjectsJS() as Record<string, unknown>[] };
  } finally {
    con.closeSync();
    inst.closeSync();
  }
}

const all = DOCS.flatMap((doc) =>
  blocks(doc, 'sql').map(
    (sql, i) =>
      [
        `${doc} #${i + 1}: ${sql
          .split('\n')
          .find((l) => !l.startsWith('--'))!
          .trim()
          .slice(0, 60)}`,
        sql,
      ] as const,
  ),
);

test('the docs hold the queries this test pastes', () => {
  expect(blocks('README.md', 'sql').length).toBeGreaterThanOrEqual(1);
  expect(blocks(path.join('docs', 'queries.md'), 'sql').length).toBeGreaterThanOrEqual(14);
});

test.each(all)('%s runs as printed; epoch columns come back as integers', async (_name, sql) => {
  const { names, types, rows } = await paste(sql);
  names.forEach((n, i) => {
    if (!EPOCH_COLUMNS.has(n)) return;
    expect({ column: n, type: types[i] }).toEqual({ column: n, type: 'INTEGER' });
    for (const r of rows) expect(r[n] === null || Number.isInteger(r[n])).toBe(true);
  });
});

const python = readersPython().python;
(python ? test : test.skip)("the README's pandas lines run as printed and give its SQL's answer", async () => {
  const [sql] = blocks('README.md', 'sql');
  // the README's other Python blocks (saving weights with safetensors) are not about the logs
  const py = blocks('README.md', 'python').find((b) => b.includes('read_parquet'));
  expect(py).toBeDefined();
  const viaSql = (await paste(sql)).rows.map((r) => [Number(r.epoch), Number(r.memorized)]);
  const r = spawnSync(python!, ['-c', py!], { cwd: ws, encoding: 'utf8', timeout: 120_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const viaPandas = [...r.stdout.matchAll(/^(\d+)\s+(\d+)$/gm)].map((m) => [Number(m[1]), Number(m[2])]);
  expect(viaSql.length).toBeGreaterThan(0);
  expect(viaPandas).toEqual(viaSql);
});
