import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeGradientProbe } from '../../src/report/gradient-probe-files';
import { renderReport, reportFigures } from '../../src/report/report';
import { loadReportRun } from '../../src/report/report-data';
import { syntheticRun } from '../logs/synthetic-run';
import { writeRun } from '../logs/run-sink';

/**
 * The figures the real tiny runs of report.test.ts do not produce (complexity measures, the
 * gradient probe), from synthetic logs written by the Parquet sink: present, with the logged values,
 * and compiled by Vega-Lite without a warning.
 */
let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-figs-'));
  await writeRun(syntheticRun({ runDir: path.join(dir, 'a'), runId: 'a', n: 60, epochs: 5, batch: 20 }));
  await writeRun(syntheticRun({ runDir: path.join(dir, 'b'), runId: 'b', n: 60, epochs: 5, batch: 20, seed: 8, teStart: 2 }));
  const rows = [1e-4, 1e-3, 1e-2].map((alpha, i) => ({
    alpha,
    delta: 0.01 * (i + 1),
    grad_norm: 1,
    grad_norm_base: 1,
    loss: 1,
    loss_base: 1,
  }));
  // what `atflow eval` leaves in a run folder (its summary's scalar fields are shown as they are)
  fs.mkdirSync(path.join(dir, 'b', 'eval', 'autoattack'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'b', 'eval', 'autoattack', 'summary.json'),
    JSON.stringify({ robust_accuracy: 0.4123, n: 1000, attacks: ['apgd-ce'] }),
  );
  await writeGradientProbe(path.join(dir, 'a'), { runId: 'a', epoch: 3, trainer: 'pgd-at', seed: 1, batchSize: 16, rows });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('complexity vs robust gap, probe Δ(α), TE weight only where TE is on', async () => {
  const runs = ['a', 'b'].map((r) => loadReportRun(path.join(dir, r)));
  const figs = reportFigures(runs);
  expect(figs.map((f) => f.id)).toEqual([
    'accuracy',
    'best-minus-current',
    'events',
    'te-weight',
    'gradient-norm',
    'complexity',
    'gradient-probe',
    'data-map',
    'data-map-outcome',
    'forgetting-histogram',
  ]);
  const complexity = figs.find((f) => f.id === 'complexity')!.spec.data.values as Array<Record<string, number | string>>;
  // synthetic-run logs frobenius_sum = 10 + epoch; robust gap = train − test robust accuracy of that epoch
  const e3 = complexity.find((v) => v.run === 'a' && v.measure === 'frobenius_sum' && v.epoch === 3)!;
  expect(e3.value).toBe(13);
  expect(e3.gap).toBeCloseTo(0.3 + 0.12 * 3 - 0.6, 12);
  const probe = figs.find((f) => f.id === 'gradient-probe')!.spec.data.values as Array<Record<string, number | string>>;
  expect(probe.map((p) => [p.run, p.epoch, p.alpha, p.delta])).toEqual([
    ['a', 3, 1e-4, 0.01],
    ['a', 3, 1e-3, 0.02],
    ['a', 3, 1e-2, 0.03],
  ]);
  // run a has TE from epoch 3 (syntheticRun's default teStart), b from 2: both shown; a run without TE would not be
  const te = figs.find((f) => f.id === 'te-weight')!.spec.data.values as Array<Record<string, number | string>>;
  expect(new Set(te.map((v) => v.run))).toEqual(new Set(['a', 'b']));
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    const html = await renderReport(runs);
    expect(warn).not.toHaveBeenCalled();
    expect((html.match(/<div class="vega-static"><svg/g) ?? []).length).toBe(figs.length);
    expect(html).toMatch(
      /<table id="evals">.*<th>robust_accuracy<\/th><th>n<\/th><\/tr>.*<td data-v="b">b<\/td><td data-v="autoattack">autoattack<\/td><td data-v="0.4123">0.4123<\/td><td data-v="1000">1000<\/td>/,
    );
  } finally {
    warn.mockRestore();
  }
});
