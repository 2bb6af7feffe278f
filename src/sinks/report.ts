import * as fs from 'fs';
import * as path from 'path';
import type * as arrow from 'apache-arrow';
import { AtflowError } from '../core/errors';
import { readParquetTable, writeFileAtomic } from './parquet-writer';
import { readRunMeta, RunMeta } from './run-meta';
import { describeEvalProtocol, type EvalProtocol } from '../core/eval-protocol';
import { escapeXml, linePlot, PALETTE, PlotMarker, PlotSeries } from './svg-plot';

/** What the report reads from one run folder (Parquet via parquet-wasm; spec.json; summary.json if any). */
export interface ReportRun {
  readonly runId: string;
  readonly dir: string;
  readonly meta: RunMeta;
  /** spec.json's `evaluation`: the per-epoch evaluation protocol (null for older run folders). */
  readonly evaluation?: EvalProtocol | null;
  readonly epochs: Array<Record<string, number | string>>;
  /** epoch → "event|noisy" → count */
  readonly events: Map<number, Map<string, number>>;
  readonly steps: Array<{ epoch: number; step: number; grad_norm_sq: number; loss: number }>;
  /** measure → [epoch, value][] */
  readonly complexity: Map<string, Array<[number, number]>>;
  /** The gradient-instability probe, if `atflow probe gradient` was run: [alpha, delta][] */
  readonly probe: Array<[number, number]>;
}

function rows(t: arrow.Table): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (let i = 0; i < t.numRows; i++) out.push(t.get(i)!.toJSON());
  return out;
}

function optionalTable(dir: string, name: string, columns?: string[]): Array<Record<string, any>> {
  const file = path.join(dir, `${name}.parquet`);
  return fs.existsSync(file) ? rows(readParquetTable(file, columns)) : [];
}

export function loadReportRun(dir: string): ReportRun {
  if (!fs.existsSync(path.join(dir, 'epochs.parquet'))) {
    throw new AtflowError('DATA_FILE', `${dir} is not a run folder with logs: epochs.parquet is missing (expected spec.json, epochs.parquet, ... as written by the Parquet sink)`, { path: dir });
  }
  let spec: { run_id?: string; spec?: unknown; evaluation?: EvalProtocol } = {};
  try {
    spec = JSON.parse(fs.readFileSync(path.join(dir, 'spec.json'), 'utf8'));
  } catch {
    // spec.json is optional for the report
  }
  const epochs = optionalTable(dir, 'epochs').sort((a, b) => a.epoch - b.epoch);
  const events = new Map<number, Map<string, number>>();
  for (const r of optionalTable(dir, 'events', ['epoch', 'event', 'is_noisy'])) {
    const m = events.get(r.epoch) ?? new Map<string, number>();
    const k = `${r.event}|${r.is_noisy ? 'noisy' : 'clean'}`;
    m.set(k, (m.get(k) ?? 0) + 1);
    events.set(r.epoch, m);
  }
  const complexity = new Map<string, Array<[number, number]>>();
  for (const r of optionalTable(dir, 'complexity')) {
    if (r.value === null) continue;
    const l = complexity.get(r.measure) ?? [];
    l.push([r.epoch, r.value]);
    complexity.set(r.measure, l);
  }
  const steps = optionalTable(dir, 'steps', ['epoch', 'step', 'grad_norm_sq', 'loss']) as ReportRun['steps'];
  const probe = optionalTable(dir, 'gradient_probe')
    .filter((r) => r.alpha > 0)
    .map((r): [number, number] => [r.alpha, r.delta]);
  return { runId: spec.run_id ?? path.basename(dir), dir, meta: readRunMeta(spec.spec), evaluation: spec.evaluation ?? null, epochs, events, steps, complexity, probe };
}

/** Parquet nulls (NaN on write: e.g. epochs without an evaluation) stay NaN, never 0. */
const num = (v: unknown): number => (v === null || v === undefined ? NaN : Number(v));

const EVENT_KINDS = ['learned', 'forgotten', 'robust_learned', 'robust_forgotten'] as const;

/** The report as one self-contained HTML document (inline SVG, no scripts, no external resources). */
export function renderReport(runs: readonly ReportRun[]): string {
  const multi = runs.length > 1;
  const color = (i: number) => PALETTE[i % PALETTE.length];
  const label = (r: ReportRun, what: string) => (multi ? `${r.runId} · ${what}` : what);
  const sections: string[] = [];
  const plot = (id: string, title: string, svg: string, note = '') =>
    sections.push(`<section id="${id}"><h2>${escapeXml(title)}</h2>${note ? `<p class="note">${escapeXml(note)}</p>` : ''}${svg}</section>`);

  // 1. accuracies, best and final marked
  {
    const series: PlotSeries[] = [];
    const markers: PlotMarker[] = [];
    runs.forEach((r, i) => {
      const c = multi ? color(i) : undefined;
      const e = r.epochs;
      const s = (key: string, name: string, k: number, dash = false) =>
        series.push({ name: label(r, name), color: c ?? color(k), dash, points: e.map((x) => [Number(x.epoch), num(x[key])]) });
      s('test_robust_acc', 'test robust', 0);
      s('test_clean_acc', 'test clean', 1, !multi ? false : true);
      s('train_robust_acc', 'train robust', 2, true);
      s('train_clean_acc', 'train clean', 3, true);
      if (e.length) {
        const last = e[e.length - 1];
        const best = e.find((x) => x.epoch === last.best_epoch) ?? last;
        // (the last epoch is always evaluated; best_epoch names an evaluated one)
        markers.push({ x: Number(best.epoch), y: num(best.test_robust_acc), label: label(r, `best ${best.epoch}`), color: c ?? color(0) });
        markers.push({ x: Number(last.epoch), y: num(last.test_robust_acc), label: label(r, 'final'), color: c ?? color(0) });
      }
    });
    plot('accuracy', 'Accuracy per epoch', linePlot({ id: 'plot-accuracy', title: 'clean and robust accuracy', xLabel: 'epoch', yLabel: 'accuracy', series, markers }), 'Train accuracies are against the labels trained on (noisy where label noise is on).');
  }
  // 2. best − final (robust accuracy below the best so far)
  plot(
    'best-minus-final',
    'Best − current test robust accuracy',
    linePlot({
      id: 'plot-best-minus-final',
      title: 'robust overfitting: best so far − current',
      xLabel: 'epoch',
      yLabel: 'accuracy points lost',
      series: runs.map((r, i) => {
        let best = -Infinity;
        // epochs without an evaluation (eval.every > 1) have no point
        const evaluated = r.epochs.filter((x) => Number.isFinite(num(x.test_robust_acc)));
        return { name: r.runId, color: color(i), points: evaluated.map((x) => ((best = Math.max(best, num(x.test_robust_acc))), [Number(x.epoch), best - num(x.test_robust_acc)] as [number, number])) };
      }),
    }),
  );
  // 3. memorization events, noisy vs clean
  {
    const series: PlotSeries[] = [];
    runs.forEach((r, i) => {
      const epochs = [...r.events.keys()].sort((a, b) => a - b);
      EVENT_KINDS.forEach((k, j) => {
        for (const n of ['noisy', 'clean'] as const) {
          const pts = epochs.map((e): [number, number] => [e, r.events.get(e)!.get(`${k}|${n}`) ?? 0]);
          if (pts.every((p) => p[1] === 0)) continue;
          series.push({ name: label(r, `${k} (${n})`), color: multi ? color(i) : color(j), dash: n === 'clean', points: pts });
        }
      });
    });
    plot('events', 'Memorization events per epoch', linePlot({ id: 'plot-events', title: 'learned / forgotten, noisy vs clean labels', xLabel: 'epoch', yLabel: 'examples', series, height: 360 }), 'Solid: examples with a corrupted label; dashed: clean labels.');
  }
  // 4. TE weight and learning rate
  plot(
    'te-weight',
    'Temporal-ensembling weight',
    linePlot({ id: 'plot-te-weight', title: 'TE weight w(t)', xLabel: 'epoch', yLabel: 'w(t)', series: runs.map((r, i) => ({ name: r.runId, color: color(i), points: r.epochs.map((x) => [Number(x.epoch), Number(x.te_weight)] as [number, number]) })) }),
  );
  // 5. gradient norms (per step and epoch mean) and the probe
  plot(
    'gradient-norm',
    'Squared gradient norm',
    linePlot({
      id: 'plot-gradient-norm',
      title: 'Σ‖∇W‖²_F per step (epoch mean dashed)',
      xLabel: 'epoch',
      yLabel: 'squared gradient norm',
      logY: true,
      series: runs.flatMap((r, i) => {
        const perEpoch = new Map<number, number>();
        for (const s of r.steps) perEpoch.set(s.epoch, Math.max(perEpoch.get(s.epoch) ?? 0, s.step + 1));
        return [
          { name: label(r, 'step'), color: color(i), points: r.steps.map((s) => [s.epoch - 1 + (s.step + 0.5) / (perEpoch.get(s.epoch) ?? 1), s.grad_norm_sq] as [number, number]) },
          { name: label(r, 'epoch mean'), color: multi ? color(i) : color(1), dash: true, points: r.epochs.map((x) => [Number(x.epoch) - 0.5, Number(x.grad_norm_sq_mean)] as [number, number]) },
        ];
      }),
    }),
  );
  if (runs.some((r) => r.probe.length)) {
    plot(
      'gradient-probe',
      'Gradient instability probe',
      linePlot({ id: 'plot-gradient-probe', title: 'Δ(α) = ‖∇L(θ+αd) − ∇L(θ)‖ / ‖∇L(θ)‖', xLabel: 'α', yLabel: 'Δ(α)', logX: true, logY: true, series: runs.filter((r) => r.probe.length).map((r, i) => ({ name: r.runId, color: color(i), points: r.probe })) }),
    );
  }
  // 6. complexity measures, one small plot each
  const measures = [...new Set(runs.flatMap((r) => [...r.complexity.keys()]))].sort();
  if (measures.length) {
    sections.push(
      `<section id="complexity"><h2>Complexity measures</h2><div class="grid">${measures
        .map((m) =>
          linePlot({ id: `plot-complexity-${m}`, title: m, xLabel: 'epoch', yLabel: m, width: 380, height: 240, series: runs.map((r, i) => ({ name: r.runId, color: color(i), points: r.complexity.get(m) ?? [] })) }),
        )
        .join('')}</div></section>`,
    );
  }
  const table = `<table><thead><tr><th>run</th><th>trainer</th><th>TE</th><th>label noise</th><th>attack</th><th>evaluation</th><th>best epoch</th><th>best robust</th><th>final robust</th><th>best − final</th></tr></thead><tbody>${runs
    .map((r) => {
      const last = r.epochs[r.epochs.length - 1];
      const best = last ? r.epochs.find((x) => x.epoch === last.best_epoch) ?? last : undefined;
      const pct = (x: unknown) => (typeof x === 'number' ? `${(100 * x).toFixed(2)}%` : '–');
      const a = r.meta.attack;
      return `<tr><td>${escapeXml(r.runId)}</td><td>${escapeXml(r.meta.trainer)}</td><td>${r.meta.te ? 'yes' : 'no'}</td><td>${escapeXml(r.meta.label_noise.kind)} ${r.meta.label_noise.rate}</td><td>${escapeXml(a.norm)} ε=${fmtNum(a.eps)} α=${fmtNum(a.alpha)} ×${a.steps}</td><td>${r.evaluation ? escapeXml(describeEvalProtocol(r.evaluation)) : '–'}</td><td>${best?.epoch ?? '–'}</td><td>${pct(best?.test_robust_acc)}</td><td>${pct(last?.test_robust_acc)}</td><td>${best && last ? pct(Number(best.test_robust_acc) - Number(last.test_robust_acc)) : '–'}</td></tr>`;
    })
    .join('')}</tbody></table>`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>atflow report: ${escapeXml(runs.map((r) => r.runId).join(', '))}</title>
<style>body{font-family:sans-serif;margin:24px;color:#222}section{margin:18px 0}h2{font-size:16px;margin:8px 0}.note{color:#666;font-size:12px}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}.grid{display:flex;flex-wrap:wrap;gap:8px}</style>
</head><body><h1>atflow report</h1>${table}
${sections.join('\n')}
</body></html>
`;
}

function fmtNum(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(4))) : '?';
}

/** Reads the run folders and writes the report atomically; returns its path. */
export function writeReport(runDirs: readonly string[], outFile?: string): string {
  if (runDirs.length === 0) throw new AtflowError('ARGUMENT', 'report: give at least one run folder');
  const runs = runDirs.map(loadReportRun);
  const file = outFile ?? (runDirs.length === 1 ? path.join(runDirs[0], 'report.html') : path.resolve('report.html'));
  writeFileAtomic(file, renderReport(runs));
  return file;
}
