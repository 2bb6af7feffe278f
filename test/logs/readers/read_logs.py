"""Reads atflow's log tables with each reader's obvious call and prints what every reader got, as JSON.

Used by test/logs/log-readers.test.ts (in the venv of scripts/log-readers-setup.sh). argv[1] is a JSON list
of {"name", "kind", "path"}: kind "dataset" is the examples folder, "file" a .parquet file, "stream" an
Arrow IPC stream (.arrows). The calls are the ones a user types first:

  dataset  pandas.read_parquet(dir)   pyarrow.parquet.read_table(dir)   polars.read_parquet(dir)
           duckdb.sql("SELECT * FROM '<dir>/*/*.parquet'")
  file     pandas.read_parquet(f)     pyarrow.parquet.read_table(f)     polars.read_parquet(f)
           duckdb.sql("SELECT * FROM '<f>'")
  stream   pyarrow.ipc.open_stream(f).read_all()   polars.read_ipc_stream(f)   (pandas through pyarrow:
           pyarrow.ipc.open_stream(f).read_pandas(); DuckDB has no Arrow IPC reader without an extension)

Per table and reader: the row count, the columns, the epoch column's type and whether it is an integer type,
its distinct values, and a digest of the rows (values normalised: NaN and null alike, floats as Python
floats, timestamps as UTC ISO strings) so that the test can check every reader returned the same rows.
A reader that fails reports its error instead.
"""

import datetime
import hashlib
import json
import math
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def norm(v):
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp, datetime.datetime)):
        ts = pd.Timestamp(v)
        ts = ts.tz_localize('UTC') if ts.tzinfo is None else ts.tz_convert('UTC')
        return ts.isoformat(timespec='milliseconds')
    if hasattr(v, 'item') and not isinstance(v, (str, bytes)):  # numpy scalars
        v = v.item()
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) else v
    return v


def summary(columns, rows, epoch_type, epoch_is_int):
    rows = [tuple(norm(v) for v in r) for r in rows]
    rows.sort(key=lambda r: json.dumps(r))
    epochs = None
    if 'epoch' in columns:
        i = columns.index('epoch')
        epochs = sorted({r[i] for r in rows}, key=lambda x: (str(type(x)), x))
    return {
        'rows': len(rows),
        'columns': list(columns),
        'epoch_type': epoch_type,
        'epoch_is_integer': epoch_is_int,
        'epochs': epochs,
        'digest': hashlib.sha256(json.dumps(rows).encode()).hexdigest(),
        'first': rows[0] if rows else None,
    }


def from_pandas(df):
    t = str(df['epoch'].dtype) if 'epoch' in df.columns else None
    is_int = pd.api.types.is_integer_dtype(df['epoch']) if 'epoch' in df.columns else None
    return summary(list(df.columns), df.itertuples(index=False, name=None), t, bool(is_int) if is_int is not None else None)


def from_arrow(t):
    f = t.schema.field('epoch') if 'epoch' in t.schema.names else None
    return summary(t.schema.names, (tuple(r.values()) for r in t.to_pylist()), str(f.type) if f else None, pa.types.is_integer(f.type) if f else None)


def from_polars(df):
    d = df.schema.get('epoch')
    return summary(df.columns, df.iter_rows(), str(d) if d is not None else None, d.is_integer() if d is not None else None)


def from_duckdb(rel):
    types = dict(zip(rel.columns, (str(t) for t in rel.types)))
    t = types.get('epoch')
    return summary(rel.columns, rel.fetchall(), t, t in ('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT') if t else None)


def sql_literal(p):
    return "'" + p.replace("'", "''") + "'"


def readers(kind, p):
    if kind == 'dataset':
        return {
            'pandas.read_parquet(dir)': lambda: from_pandas(pd.read_parquet(p)),
            'pyarrow.parquet.read_table(dir)': lambda: from_arrow(pq.read_table(p)),
            'polars.read_parquet(dir)': lambda: from_polars(pl.read_parquet(p)),
            "duckdb.sql(\"SELECT * FROM '<dir>/*/*.parquet'\")": lambda: from_duckdb(duckdb.sql(f'SELECT * FROM {sql_literal(p + "/*/*.parquet")}')),
        }
    if kind == 'file':
        return {
            'pandas.read_parquet(file)': lambda: from_pandas(pd.read_parquet(p)),
            'pyarrow.parquet.read_table(file)': lambda: from_arrow(pq.read_table(p)),
            'polars.read_parquet(file)': lambda: from_polars(pl.read_parquet(p)),
            "duckdb.sql(\"SELECT * FROM '<file>'\")": lambda: from_duckdb(duckdb.sql(f'SELECT * FROM {sql_literal(p)}')),
        }
    if kind == 'stream':
        return {
            'pyarrow.ipc.open_stream(file).read_pandas()': lambda: from_pandas(ipc.open_stream(p).read_pandas()),
            'pyarrow.ipc.open_stream(file).read_all()': lambda: from_arrow(ipc.open_stream(p).read_all()),
            'polars.read_ipc_stream(file)': lambda: from_polars(pl.read_ipc_stream(p)),
        }
    raise ValueError(f'unknown kind {kind}')


def main():
    out = {'versions': {'pandas': pd.__version__, 'pyarrow': pa.__version__, 'polars': pl.__version__, 'duckdb': duckdb.__version__}, 'tables': {}}
    for t in json.loads(sys.argv[1]):
        got = {}
        for call, read in readers(t['kind'], t['path']).items():
            try:
                got[call] = read()
            except Exception as e:  # the test reports which reader failed and why
                got[call] = {'error': f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'}
        out['tables'][t['name']] = got
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
