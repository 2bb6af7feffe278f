import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import type { BatchPlan } from '../../src/core/batch';
import type { RunEvent } from '../../src/core/run-event';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun } from '../../src/run/execute-run';
import type { RunSink } from '../../src/core/run-sink';
import { parquetRunSink } from '../../src/logs/sinks';
import { resolveRuns } from '../../src/config/spec';
import { createModel } from '../../src/models';
import { type Source } from '../../src/data';
import { createSource } from '../../src/config/builtins';
import { tableRows, tempRoot, tinySpec } from './helpers';

/**
 * Issue 8, "Long runs": a slow sink (a throttled disk) must not let batches pile up in memory. The
 * runner awaits every sink, so while a sink is busy with batch k's rows, batch k+1 is not even loaded:
 * at any moment at most one batch of tensors exists next to the model and optimizer state.
 */
const SLEEP_MS = 200;
const TRAIN = 48;
const BATCH = 8;
const EPOCHS = 2;
const STEPS = TRAIN / BATCH;

describe('back-pressure: a slow sink does not let batches pile up', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it(`with a sink that takes ${SLEEP_MS} ms per examples event, one batch at most is alive`, async () => {
    // the source counts the training-split batches it has loaded since the epoch began (each load
    // makes that batch's tensors); the training pass comes first, the train-set evaluation after it
    let trainLoads = 0;
    const registry = defaultRegistry().register('source', 'counted-mnist', (o: Record<string, unknown>): Source => {
      const inner = createSource('mnist', o);
      return {
        info: inner.info,
        splits: inner.splits,
        split: (s) => inner.split(s),
        load: (plan: BatchPlan) => {
          if (plan.split === 'train' && plan.epoch > 0) trainLoads++;
          return inner.load(plan);
        },
      };
    });

    let baseline = -1; // tensors alive at run-start: the model's variables (SGD's momentum slots come at the first step)
    const probe = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 0 });
    const slots = probe.parameters.length;
    probe.dispose();
    let trainRowsHandled = 0;
    let epochRowsHandled = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const samples: { tensors: number; loadsAhead: number }[] = [];
    const slowSink: RunSink = {
      name: 'throttled-disk',
      async handle(ev: RunEvent) {
        if (ev.type === 'run-start') baseline = tf.memory().numTensors;
        if (ev.type === 'epoch-start') trainLoads = epochRowsHandled = 0;
        if (ev.type !== 'examples') return;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        if (ev.columns.phase === 'train') {
          trainRowsHandled++;
          epochRowsHandled++;
          samples.push({ tensors: tf.memory().numTensors, loadsAhead: trainLoads - epochRowsHandled });
        }
        await new Promise((r) => setTimeout(r, SLEEP_MS));
        if (ev.columns.phase === 'train') samples.push({ tensors: tf.memory().numTensors, loadsAhead: trainLoads - epochRowsHandled });
        inFlight--;
      },
    };
    // an independent sampler: whenever the event loop is free during the run
    const timerSamples: number[] = [];
    const timer = setInterval(() => baseline >= 0 && timerSamples.push(tf.memory().numTensors), 25);

    const [run] = resolveRuns(
      tinySpec('slow', {
        epochs: EPOCHS,
        data: { source: 'counted-mnist', trainSize: TRAIN, testSize: 8, batchSize: BATCH, testBatchSize: 8 },
      }),
    );
    const out = tempRoot('atflow-backpressure-');
    const before = tf.memory().numTensors;
    const t0 = Date.now();
    let outcome;
    try {
      outcome = await executeRun(run, { outDir: out, registry, backend: 'wasm', sinks: () => [parquetRunSink(), slowSink] });
    } finally {
      clearInterval(timer);
    }
    const wall = Date.now() - t0;

    expect(outcome.status).toBe('completed');
    // the sink really was the bottleneck: every train batch waited for it
    expect(trainRowsHandled).toBe(EPOCHS * STEPS);
    expect(wall).toBeGreaterThanOrEqual(EPOCHS * STEPS * SLEEP_MS);
    expect(maxInFlight).toBe(1);
    expect(baseline).toBeGreaterThan(0);
    // while the sink holds batch k's rows, batch k+1 has not been loaded: no batch is queued behind it
    expect(samples.map((s) => s.loadsAhead)).toEqual(new Array(2 * EPOCHS * STEPS).fill(0));
    // and no batch's tensors are alive then (train disposes a batch before its rows are emitted): the
    // bound, model + momentum slots + 4, allows one batch (x, x', labels, logits), not a pile-up of 5+
    const bound = baseline + slots + 4;
    for (const s of samples) expect(s.tensors).toBeLessThanOrEqual(bound);
    expect(timerSamples.length).toBeGreaterThan(EPOCHS * STEPS);
    expect(Math.max(...timerSamples)).toBeLessThanOrEqual(bound);
    // flat: the last batch sees what the first one saw
    expect(samples[samples.length - 1].tensors).toBe(samples[0].tensors);
    expect(tf.memory().numTensors).toBe(before);
    // nothing was dropped on the way: per epoch N train rows, N eval rows and the 8 test examples' eval rows
    const rows = tableRows(path.join(outcome.runDir, 'examples'));
    expect(rows.length).toBe((TRAIN * 2 + 8) * EPOCHS);
    expect(fs.existsSync(path.join(outcome.runDir, '_SUCCESS'))).toBe(true);
  });
});
