import type { ReportRun } from './report-data';
import type { VegaLiteSpec } from './vega-runtime';

/**
 * The report's per-run and across-run figures as Vega-Lite specs (data inlined). Runs are overlaid
 * in colour by their label; every line chart zooms and pans (interval selection bound to the scales)
 * and has tooltips when the page's script runs. Best and final epochs are symbols with a legend,
 * not text, so no label can land on another.
 */
export interface Figure {
  /** DOM id suffix and export name, e.g. 'accuracy' → #fig-accuracy, accuracy.svg */
  readonly id: string;
  readonly title: string;
  readonly note?: string;
  readonly spec: VegaLiteSpec;
}

/** Parquet nulls (e.g. epochs without an evaluation) stay missing, never 0. */
const num = (v: unknown): number | null => {
  const x = v === null || v === undefined ? NaN : Number(v);
  return Number.isFinite(x) ? x : null;
};

export const WIDTH = 380;
export const HEIGHT = 230;

/** Colour channel for runs: categorical, legend never truncated. */
export function runColor(runs: readonly ReportRun[]): VegaLiteSpec {
  return {
    field: 'run',
    type: 'nominal',
    title: 'run',
    sort: runs.map((r) => r.label),
    legend: { labelLimit: 0, orient: 'bottom', direction: 'vertical' },
  };
}

/**
 * The epoch axis of the per-epoch figures: every figure of a report spans the runs' logged epochs (the
 * first to the last, whichever figure starts later), padded so the best / final symbols at either end stay
 * whole (zoom clips marks to the plot), never niced (a padded, niced domain rounds past the run: an
 * 80-epoch run's axis ran to 90, a 200-epoch run's from −20 to 220). A tick that falls in the padding
 * (80 for a 79-epoch run) is hidden: the axis shows no epoch the runs do not have.
 */
export function epochX(runs: readonly ReportRun[]): Record<string, unknown> {
  const epochs = runs.flatMap((r) => r.epochs.map((e) => Number(e.epoch))).filter(Number.isFinite);
  const lo = epochs.length ? Math.min(...epochs) : 0;
  const hi = epochs.length ? Math.max(...epochs) : 1;
  const outside = { condition: { test: `datum.value < ${lo} || datum.value > ${hi}`, value: 0 }, value: 1 };
  return {
    field: 'epoch',
    type: 'quantitative',
    title: 'epoch',
    scale: { domain: hi > lo ? [lo, hi] : [lo - 0.5, lo + 0.5], padding: 8, nice: false },
    // labelOverlap would reset every label's opacity to 1 before hiding overlaps: off (epoch labels are short, ticks ≥ 40 px apart)
    axis: { tickMinStep: 1, format: 'd', labelOverlap: false, labelOpacity: outside, tickOpacity: outside, gridOpacity: outside },
  };
}

/**
 * A percentage axis whose label precision follows the tick step (d3's '%' with no precision: 0.0%,
 * 0.5%, 1.0% over a 1.5-point range, 0%, 10%, … over 60 points; '.0%' printed 0%, 0%, 1%, 1%), also
 * while zooming. A domain that is a single value (every drop 0) gets a one-point range, else the tick
 * step is 0 and '%' prints 0.000000%.
 */
export function percentAxis(values: readonly number[]): { axis: { format: string }; scale?: { domain: [number, number] } } {
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(0, ...finite);
  const hi = Math.max(0, ...finite);
  return hi - lo > 1e-12 ? { axis: { format: '%' } } : { axis: { format: '%' }, scale: { domain: [lo, lo + 0.01] } };
}
const zoom = (name: string) => ({ name, select: 'interval', bind: 'scales' });
const pointsFor = (runs: readonly ReportRun[]) => Math.max(0, ...runs.map((r) => r.epochs.length)) <= 60;

/** Clean and robust accuracy, train and test, per epoch; best and final test robust marked. */
export function accuracyFigure(runs: readonly ReportRun[]): Figure {
  const multi = runs.length > 1;
  const values: Record<string, unknown>[] = [];
  for (const r of runs) {
    for (const e of r.epochs) {
      for (const split of ['train', 'test'] as const) {
        for (const metric of ['clean', 'robust'] as const) {
          const v = num(e[`${split}_${metric}_acc`]);
          if (v !== null) values.push({ run: r.label, epoch: Number(e.epoch), split, metric, accuracy: v });
        }
      }
    }
    const last = r.epochs[r.epochs.length - 1];
    if (last) {
      const best = r.epochs.find((x) => x.epoch === last.best_epoch) ?? last;
      for (const [marker, e] of [
        ['best', best],
        ['final', last],
      ] as const) {
        const v = num(e.test_robust_acc);
        if (v !== null) values.push({ run: r.label, epoch: Number(e.epoch), split: 'test', metric: 'robust', accuracy: v, marker });
      }
    }
  }
  const panel = (metric: 'clean' | 'robust') => ({
    width: WIDTH,
    height: HEIGHT,
    title: `${metric} accuracy`,
    layer: [
      {
        transform: [{ filter: `datum.metric == '${metric}' && !isValid(datum.marker)` }],
        params: [zoom(`zoom_${metric}`)],
        mark: { type: 'line', point: pointsFor(runs) ? { size: 14 } : false, strokeWidth: 1.6 },
        encoding: {
          x: epochX(runs),
          y: {
            field: 'accuracy',
            type: 'quantitative',
            title: 'accuracy',
            ...percentAxis(values.filter((v) => v.metric === metric).map((v) => v.accuracy as number)),
          },
          color: multi
            ? { ...runColor(runs) }
            : { field: 'split', type: 'nominal', title: 'split', sort: ['train', 'test'], legend: { orient: 'bottom' } },
          strokeDash: {
            field: 'split',
            type: 'nominal',
            title: 'split',
            sort: ['test', 'train'],
            legend: { orient: 'bottom', symbolType: 'stroke', encode: { symbols: { update: { stroke: { value: '#444' } } } } },
          },
          tooltip: [
            { field: 'run' },
            { field: 'split' },
            { field: 'epoch', type: 'quantitative' },
            { field: 'accuracy', type: 'quantitative', format: '.2%' },
          ],
        },
      },
      // best / final are test robust accuracies: only the robust panel marks them
      ...(metric === 'clean'
        ? []
        : [
            {
              transform: [{ filter: `datum.metric == '${metric}' && isValid(datum.marker)` }],
              mark: { type: 'point', filled: true, size: 110, stroke: 'black', strokeWidth: 0.8 },
              encoding: {
                x: epochX(runs),
                y: { field: 'accuracy', type: 'quantitative' },
                shape: {
                  field: 'marker',
                  type: 'nominal',
                  title: 'test robust',
                  scale: { domain: ['best', 'final'], range: ['diamond', 'square'] },
                  legend: { orient: 'bottom' },
                },
                color: multi ? runColor(runs) : { value: '#222' },
                tooltip: [
                  { field: 'run' },
                  { field: 'marker' },
                  { field: 'epoch', type: 'quantitative' },
                  { field: 'accuracy', type: 'quantitative', format: '.2%' },
                ],
              },
            },
          ]),
    ],
  });
  return {
    id: 'accuracy',
    title: 'Clean and robust accuracy per epoch',
    note:
      'Solid: test; dashed: train (against the labels trained on, noisy ' +
      'where label noise is on). Diamond: best epoch (test robust); square: ' +
      'final epoch.',
    spec: {
      data: { values },
      hconcat: [panel('clean'), panel('robust')],
      resolve: { scale: { color: 'shared', strokeDash: 'shared', shape: 'shared' } },
    },
  };
}

/** best-so-far − current test robust accuracy (robust overfitting). */
export function bestMinusCurrentFigure(runs: readonly ReportRun[]): Figure {
  const values: Record<string, unknown>[] = [];
  for (const r of runs) {
    let best = -Infinity;
    for (const e of r.epochs) {
      const v = num(e.test_robust_acc);
      if (v === null) continue; // epochs without an evaluation (eval.every > 1) have no point
      best = Math.max(best, v);
      values.push({ run: r.label, epoch: Number(e.epoch), drop: best - v });
    }
  }
  return {
    id: 'best-minus-current',
    title: 'Best − current test robust accuracy',
    note:
      'How far the current epoch is below the best test robust accuracy so ' +
      'far: robust overfitting shows as a rise after the best epoch.',
    spec: {
      data: { values },
      width: WIDTH * 2 + 40,
      height: HEIGHT - 40,
      params: [zoom('zoom_drop')],
      mark: { type: 'line', point: pointsFor(runs) ? { size: 14 } : false },
      encoding: {
        x: epochX(runs),
        y: { field: 'drop', type: 'quantitative', title: 'accuracy below best', ...percentAxis(values.map((v) => v.drop as number)) },
        color: runColor(runs),
        tooltip: [
          { field: 'run' },
          { field: 'epoch', type: 'quantitative' },
          { field: 'drop', type: 'quantitative', format: '.2%', title: 'below best' },
        ],
      },
    },
  };
}

export const EVENT_KINDS = ['learned', 'forgotten', 'robust_learned', 'robust_forgotten'] as const;

/** Memorization events per epoch, noisy vs clean labels; one row of panels per run. */
export function eventsFigure(runs: readonly ReportRun[]): Figure | null {
  const values: Record<string, unknown>[] = [];
  for (const r of runs) {
    const epochs = [...r.events.keys()].sort((a, b) => a - b);
    for (const e of epochs) {
      for (const event of EVENT_KINDS) {
        for (const label of ['noisy', 'clean'] as const)
          values.push({ run: r.label, epoch: e, event, label, examples: r.events.get(e)!.get(`${event}|${label}`) ?? 0 });
      }
    }
  }
  if (values.length === 0) return null;
  const multi = runs.length > 1;
  return {
    id: 'events',
    title: 'Memorization events per epoch',
    note:
      `Examples that became correct (learned) or wrong (forgotten) ` +
      (runs.every((r) => r.eventsPhase === 'train')
        ? 'since their previous presentation in training (events phase train), '
        : 'since their previous evaluation (events phase eval), ') +
      `clean and under attack, split by whether their label is noisy.`,
    spec: {
      data: { values },
      facet: {
        column: { field: 'event', type: 'nominal', sort: [...EVENT_KINDS], title: null, header: { labelFontSize: 12 } },
        ...(multi
          ? {
              row: {
                field: 'run',
                type: 'nominal',
                sort: runs.map((r) => r.label),
                title: null,
                header: { labelFontSize: 11, labelAngle: 0, labelAlign: 'left', labelLimit: 0 },
              },
            }
          : {}),
      },
      spec: {
        width: 170,
        height: multi ? 110 : 160,
        mark: { type: 'line', point: pointsFor(runs) ? { size: 12 } : false },
        encoding: {
          x: epochX(runs),
          y: { field: 'examples', type: 'quantitative', title: 'examples' },
          color: {
            field: 'label',
            type: 'nominal',
            title: 'label',
            sort: ['noisy', 'clean'],
            scale: { range: ['#d62728', '#1f77b4'] },
            legend: { orient: 'bottom' },
          },
          tooltip: [
            { field: 'run' },
            { field: 'event' },
            { field: 'label' },
            { field: 'epoch', type: 'quantitative' },
            { field: 'examples', type: 'quantitative' },
          ],
        },
      },
    },
  };
}

/** The TE weight w(t), only for runs that use temporal ensembling. */
export function teWeightFigure(runs: readonly ReportRun[]): Figure | null {
  const te = runs.filter((r) => r.meta.te || r.epochs.some((e) => (num(e.te_weight) ?? 0) > 0));
  if (te.length === 0) return null;
  const values = te.flatMap((r) =>
    r.epochs.filter((e) => num(e.te_weight) !== null).map((e) => ({ run: r.label, epoch: Number(e.epoch), w: num(e.te_weight) })),
  );
  return {
    id: 'te-weight',
    title: 'Temporal-ensembling weight',
    note: `Only the runs that use TE (${te.map((r) => r.label).join(', ')}).`,
    spec: {
      data: { values },
      width: WIDTH * 2 + 40,
      height: HEIGHT - 80,
      params: [zoom('zoom_te')],
      mark: { type: 'line', point: pointsFor(te) ? { size: 14 } : false, interpolate: 'step-after' },
      encoding: {
        x: epochX(runs),
        y: { field: 'w', type: 'quantitative', title: 'w(t)' },
        color: runColor(te),
        tooltip: [{ field: 'run' }, { field: 'epoch', type: 'quantitative' }, { field: 'w', type: 'quantitative', title: 'w(t)' }],
      },
    },
  };
}

export const GRADIENT_NORM_TITLE = 'squared gradient norm ‖∇θ‖²';

/** Squared gradient norm: epoch mean (line) and the per-step min–max range of the epoch (band). */
export function gradientNormFigure(runs: readonly ReportRun[]): Figure | null {
  const mean = runs.flatMap((r) =>
    r.epochs
      .filter((e) => (num(e.grad_norm_sq_mean) ?? 0) > 0)
      .map((e) => ({ run: r.label, epoch: Number(e.epoch), mean: num(e.grad_norm_sq_mean) })),
  );
  const band = runs.flatMap((r) => r.gradNormRange.map((g) => ({ run: r.label, epoch: g.epoch, min: g.min, max: g.max })));
  if (mean.length === 0 && band.length === 0) return null;
  // plain Unicode: an axis title is SVG text, where TeX-like `_F` stays literal (the sum of every weight's
  // squared Frobenius norm is the squared norm of the whole gradient θ, algorithms.md §8.2)
  const y = { type: 'quantitative', scale: { type: 'log' }, title: GRADIENT_NORM_TITLE };
  return {
    id: 'gradient-norm',
    title: 'Squared gradient norm',
    note:
      'Line: the epoch mean of the per-step squared gradient norm ‖∇θ‖² (the ' +
      'sum over every parameter tensor of its squared Frobenius norm, before ' +
      'weight decay); band: its smallest and largest step of the epoch.',
    spec: {
      width: WIDTH * 2 + 40,
      height: HEIGHT - 20,
      layer: [
        {
          data: { values: band },
          mark: { type: 'area', opacity: 0.18 },
          encoding: {
            x: epochX(runs),
            y: { field: 'min', ...y },
            y2: { field: 'max' },
            color: runColor(runs),
            tooltip: [
              { field: 'run' },
              { field: 'epoch', type: 'quantitative' },
              { field: 'min', type: 'quantitative', format: '.3g' },
              { field: 'max', type: 'quantitative', format: '.3g' },
            ],
          },
        },
        {
          data: { values: mean },
          params: [zoom('zoom_grad')],
          mark: { type: 'line', point: pointsFor(runs) ? { size: 12 } : false },
          encoding: {
            x: epochX(runs),
            y: { field: 'mean', ...y },
            color: runColor(runs),
            tooltip: [{ field: 'run' }, { field: 'epoch', type: 'quantitative' }, { field: 'mean', type: 'quantitative', format: '.3g' }],
          },
        },
      ],
    },
  };
}

/** Each complexity measure against the robust generalization gap (train − test robust accuracy). */
export function complexityFigure(runs: readonly ReportRun[]): Figure | null {
  const values: Record<string, unknown>[] = [];
  for (const r of runs) {
    const gap = new Map<number, number>();
    for (const e of r.epochs) {
      const tr = num(e.train_robust_acc);
      const te = num(e.test_robust_acc);
      if (tr !== null && te !== null) gap.set(Number(e.epoch), tr - te);
    }
    for (const [measure, pts] of r.complexity) {
      for (const [epoch, value] of pts) if (gap.has(epoch)) values.push({ run: r.label, measure, epoch, value, gap: gap.get(epoch) });
    }
  }
  if (values.length === 0) return null;
  return {
    id: 'complexity',
    title: 'Complexity measures vs the robust gap',
    note:
      'Each point is an evaluated epoch: x is the robust generalization gap ' +
      '(train − test robust accuracy), y the measure; lines join a run’s ' +
      'epochs in order.',
    spec: {
      data: { values },
      facet: { field: 'measure', type: 'nominal', title: null, header: { labelFontSize: 12 } },
      columns: 3,
      resolve: { scale: { y: 'independent', x: 'independent' } },
      spec: {
        width: 220,
        height: 170,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'gap', type: 'quantitative', title: 'robust gap', ...percentAxis(values.map((v) => v.gap as number)) },
          y: { field: 'value', type: 'quantitative', title: 'value', scale: { zero: false } },
          order: { field: 'epoch', type: 'quantitative' },
          color: runColor(runs),
          tooltip: [
            { field: 'run' },
            { field: 'measure' },
            { field: 'epoch', type: 'quantitative' },
            { field: 'value', type: 'quantitative', format: '.4g' },
            { field: 'gap', type: 'quantitative', format: '.2%' },
          ],
        },
      },
    },
  };
}

/** The gradient-instability probe Δ(α), for the runs it was run on. */
export function probeFigure(runs: readonly ReportRun[]): Figure | null {
  const values = runs.flatMap((r) => r.probe.map((p) => ({ run: r.label, series: `${r.label} · epoch ${p.epoch}`, ...p })));
  if (values.length === 0) return null;
  return {
    id: 'gradient-probe',
    title: 'Gradient instability probe',
    note: 'Δ(α) = ‖∇L(θ+αd) − ∇L(θ)‖ / ‖∇L(θ)‖ along a random unit direction d, per probed epoch (atflow probe gradient).',
    spec: {
      data: { values },
      width: WIDTH * 2 + 40,
      height: HEIGHT,
      params: [zoom('zoom_probe')],
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'alpha', type: 'quantitative', scale: { type: 'log' }, title: 'α' },
        y: { field: 'delta', type: 'quantitative', scale: { type: 'log' }, title: 'Δ(α)' },
        color: {
          field: 'series',
          type: 'nominal',
          title: 'run · epoch',
          legend: { labelLimit: 0, orient: 'bottom', direction: 'vertical' },
        },
        tooltip: [
          { field: 'series' },
          { field: 'alpha', type: 'quantitative', format: '.2e' },
          { field: 'delta', type: 'quantitative', format: '.3g' },
        ],
      },
    },
  };
}

/** Every per-run figure that has data, in report order. */
export function runFigures(runs: readonly ReportRun[]): Figure[] {
  return [
    accuracyFigure(runs),
    bestMinusCurrentFigure(runs),
    eventsFigure(runs),
    teWeightFigure(runs),
    gradientNormFigure(runs),
    complexityFigure(runs),
    probeFigure(runs),
  ].filter((f): f is Figure => f !== null);
}
