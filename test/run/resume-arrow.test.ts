import * as arrow from 'apache-arrow';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun } from '../../src/run/execute-run';
import { parquetRunSink } from '../../src/logs/sinks';
import { resolveRuns } from '../../src/config/spec';
import { ArrowRunWriter } from '../../src/logs/arrow-sink';
import { TABLES } from '../../src/logs/tables';
import { tempRoot, tinySpec } from '../reliability/helpers';
import { duck, lit } from '../logs/duck';

/**
 * A resumed run's Arrow streams (`logging.arrow`) hold the whole run, like its Parquet tables: a run
 * stopped inside epoch 3 of 4 (its checkpoint is epoch 2, a batch of epoch 3 is already in the streams)
 * and resumed has, in every arrow/*.arrows stream, the rows of the uninterrupted run in the same order.
 * Before the fix the streams were opened from scratch on resume and held epochs 3–4 only.
 */
const spec = tinySpec('resume-arrow', {
  epochs: 4,
  data: { source: 'mnist', trainSize: 64, testSize: 16, batchSize: 16, testBatchSize: 16 },
  eval: { trainSubset: 16, final: { examples: 8 } },
  logging: { arrow: true, complexityEvery: 2 },
});

const CLOCK = ['time', 'ms', 'wall_ms', 'eval_ms'];
const withoutClock = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).filter(([k]) => !CLOCK.includes(k)));

/** A stream's rows in stream order, without the wall-clock columns. */
const streamRows = (runDir: string, name: string) =>
  arrow
    .tableFromIPC(fs.readFileSync(path.join(runDir, 'arrow', `${name}.arrows`)))
    .toArray()
    .map((r) => withoutClock(r.toJSON()));

const ORDER: Record<string, string[]> = {
  examples: ['epoch', 'phase', 'split', 'example'],
  events: ['epoch', 'phase', 'example', 'event'],
  epochs: ['epoch'],
  steps: ['epoch', 'step'],
  complexity: ['epoch', 'measure'],
  labels: ['example'],
};

const byKeys = (keys: string[]) => (a: Record<string, any>, b: Record<string, any>) => {
  for (const k of keys) if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  return 0;
};

describe('Arrow streams of a resumed run', () => {
  it('a run stopped inside epoch 3 of 4 and resumed has the streams of the uninterrupted run', async () => {
    await initBackend('wasm');
    const [run] = resolveRuns(spec);
    const registry = defaultRegistry();
    const sinks = () => [parquetRunSink(), new ArrowRunWriter()];
    const tensors = tf.memory().numTensors;

    const reference = await executeRun(run, { outDir: tempRoot('atflow-resume-arrow-ref-'), registry, backend: 'wasm', sinks });
    expect(reference.status).toBe('completed');

    const out = tempRoot('atflow-resume-arrow-');
    let stop = false;
    const first = await executeRun(run, {
      outDir: out,
      registry,
      backend: 'wasm',
      sinks,
      observe: (ev$) =>
        ev$.subscribe((ev) => {
          if (ev.type === 'step' && ev.record.epoch === 3) stop = true;
        }),
      shouldStop: () => stop,
    });
    expect(first.status).toBe('interrupted');
    // rows of the un-checkpointed epoch 3 are in the streams before the resume
    expect(streamRows(first.runDir, 'steps').map((r) => r.epoch)).toContain(3);
    const resumed = await executeRun(run, { outDir: out, registry, backend: 'wasm', resume: true, sinks });
    expect(resumed.status).toBe('completed');
    expect(tf.memory().numTensors).toBe(tensors);

    for (const name of Object.keys(TABLES)) {
      const got = streamRows(resumed.runDir, name);
      expect([name, got.length]).toEqual([name, streamRows(reference.runDir, name).length]);
      expect(got).toEqual(streamRows(reference.runDir, name));
      // and the same rows as DuckDB reads from the resumed run's Parquet tables
      const src =
        name === 'examples'
          ? `read_parquet(${lit(path.join(resumed.runDir, 'examples', '*', '*.parquet'))}, hive_partitioning = false)`
          : `read_parquet(${lit(path.join(resumed.runDir, `${name}.parquet`))})`;
      const parquet = (await duck(`SELECT * FROM ${src} ORDER BY ${ORDER[name].join(', ')}`)).map(withoutClock);
      expect([name, [...got].sort(byKeys(ORDER[name]))]).toEqual([name, parquet]);
    }
    expect(streamRows(resumed.runDir, 'epochs').map((r) => r.epoch)).toEqual([1, 2, 3, 4]);
    expect(streamRows(resumed.runDir, 'complexity').map((r) => r.epoch)).toContain(2);
  }, 240_000);
});
