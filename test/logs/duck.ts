import { DuckDBInstance } from '@duckdb/node-api';

/** Runs SQL in a fresh in-memory DuckDB and returns plain JS rows (BIGINT → number). */
export async function duck(sql: string): Promise<Record<string, any>[]> {
  const inst = await DuckDBInstance.create(':memory:');
  const con = await inst.connect();
  try {
    const r = await con.runAndReadAll(sql);
    return r.getRowObjectsJS().map((row) => {
      const o: Record<string, any> = {};
      for (const [k, v] of Object.entries(row)) o[k] = typeof v === 'bigint' ? Number(v) : v;
      return o;
    });
  } finally {
    con.closeSync();
    inst.closeSync();
  }
}

/** SQL string literal. */
export const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
