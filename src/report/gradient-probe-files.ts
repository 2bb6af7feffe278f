import * as fs from 'fs';
import type { GradientProbeRow, ProbeAdversarial } from '../analysis/gradient-probe';
import { ParquetStreamWriter, readParquetTable } from '../logs/parquet-writer';
import { renderSvg } from './vega-runtime';
import { writeFileDurable } from '../core/durable-file';
import { RunFolder } from '../store/run-folder';

/** gradient_probe.parquet's columns (docs/schema.md). */
const PROBE_COLUMNS = [
  { name: 'run_id', type: 'utf8' },
  { name: 'epoch', type: 'int32' },
  { name: 'trainer', type: 'utf8' },
  { name: 'alpha', type: 'float64' },
  { name: 'delta', type: 'float64', nullable: true },
  { name: 'grad_norm', type: 'float64', nullable: true },
  { name: 'grad_norm_base', type: 'float64', nullable: true },
  { name: 'loss', type: 'float64', nullable: true },
  { name: 'loss_base', type: 'float64', nullable: true },
  { name: 'seed', type: 'int32' },
  { name: 'batch_size', type: 'int32' },
  { name: 'adversarial', type: 'utf8' },
] as const;

export interface ProbeRecord {
  readonly runId: string;
  readonly epoch: number;
  readonly trainer: string;
  readonly seed: number;
  readonly batchSize: number;
  /** Default 'recomputed'. */
  readonly adversarial?: ProbeAdversarial;
  readonly rows: readonly GradientProbeRow[];
}

/**
 * Writes `<runDir>/gradient_probe.parquet` (rows of earlier probes of other epochs or adversarial modes
 * are kept, this epoch's and mode's replaced) and `<runDir>/gradient_probe.svg` (Δ against α, log-log,
 * one line per epoch and mode).
 */
export async function writeGradientProbe(runDir: string, rec: ProbeRecord): Promise<{ parquet: string; svg: string }> {
  const file = new RunFolder(runDir).file('gradientProbe');
  type Row = {
    epoch: number;
    trainer: string;
    alpha: number;
    delta: number;
    grad_norm: number;
    grad_norm_base: number;
    loss: number;
    loss_base: number;
    seed: number;
    batch_size: number;
    run_id: string;
    adversarial: string;
  };
  const mode = rec.adversarial ?? 'recomputed';
  const keep: Row[] = [];
  if (fs.existsSync(file)) {
    const t = readParquetTable(file);
    for (let i = 0; i < t.numRows; i++) {
      const r = t.get(i)!.toJSON() as unknown as Row;
      // files written before the column existed hold recomputed-attack probes only
      const rowMode = r.adversarial ?? 'recomputed';
      if (r.epoch !== rec.epoch || rowMode !== mode) keep.push({ ...r, adversarial: rowMode });
    }
  }
  const all: Row[] = [
    ...keep,
    ...rec.rows.map((r) => ({
      ...r,
      run_id: rec.runId,
      epoch: rec.epoch,
      trainer: rec.trainer,
      seed: rec.seed,
      batch_size: rec.batchSize,
      adversarial: mode,
    })),
  ].sort((a, b) => a.epoch - b.epoch || a.adversarial.localeCompare(b.adversarial) || a.alpha - b.alpha);
  const w = await ParquetStreamWriter.open(file, PROBE_COLUMNS, {
    metadata: { 'atflow.run_id': rec.runId, 'atflow.probe': 'gradient-instability (docs/algorithms.md §8.2)' },
  });
  const f64 = (k: keyof Row) => Float64Array.from(all, (r) => (r[k] === null ? NaN : Number(r[k])));
  await w.append(
    {
      run_id: all.map((r) => r.run_id),
      epoch: Int32Array.from(all, (r) => r.epoch),
      trainer: all.map((r) => r.trainer),
      alpha: f64('alpha'),
      delta: f64('delta'),
      grad_norm: f64('grad_norm'),
      grad_norm_base: f64('grad_norm_base'),
      loss: f64('loss'),
      loss_base: f64('loss_base'),
      seed: Int32Array.from(all, (r) => r.seed),
      batch_size: Int32Array.from(all, (r) => r.batch_size),
      adversarial: all.map((r) => r.adversarial),
    },
    all.length,
  );
  await w.close();
  // Δ against α, log-log, one line per probed epoch (a Vega-Lite spec drawn by vega's headless renderer)
  const svg = await renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${rec.runId}: Δ(α) = ‖∇L(θ+αd) − ∇L(θ)‖ / ‖∇L(θ)‖`,
    data: {
      values: all
        .filter((r) => r.alpha > 0 && r.delta > 0)
        .map((r) => ({ epoch: `epoch ${r.epoch}${r.adversarial === 'fixed' ? ', fixed x′' : ''}`, alpha: r.alpha, delta: r.delta })),
    },
    width: 480,
    height: 300,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'alpha', type: 'quantitative', scale: { type: 'log' }, title: 'α' },
      y: { field: 'delta', type: 'quantitative', scale: { type: 'log' }, title: 'Δ(α)' },
      color: { field: 'epoch', type: 'nominal', title: null, legend: { labelLimit: 0 } },
    },
  });
  const svgFile = new RunFolder(runDir).file('gradientProbeSvg');
  writeFileDurable(svgFile, svg, { mkdir: true });
  return { parquet: file, svg: svgFile };
}
