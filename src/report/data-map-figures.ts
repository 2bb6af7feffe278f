import { DATA_MAP_BINS, OUTCOMES, type DataMapCell } from './data-map';
import type { Figure } from './report-figures';
import type { ReportRun } from './report-data';

/**
 * The adversarial data maps and the forgetting histogram (src/report/data-map.ts computes the
 * aggregates): binned, so their size does not depend on the number of examples or epochs.
 */
const LABEL_COLORS = {
  field: 'label',
  type: 'nominal',
  title: 'label',
  sort: ['noisy', 'clean'],
  scale: { domain: ['noisy', 'clean'], range: ['#d62728', '#1f77b4'] },
  legend: { orient: 'bottom' },
};

function rowFacet(runs: readonly ReportRun[]): Record<string, unknown> {
  return runs.length > 1
    ? {
        row: {
          field: 'run',
          type: 'nominal',
          sort: runs.map((r) => r.label),
          title: null,
          header: { labelAngle: 0, labelAlign: 'left', labelLimit: 0, labelFontSize: 11 },
        },
      }
    : {};
}

function mapped(runs: readonly ReportRun[]) {
  return runs.filter((r) => r.dataMap && r.dataMap.examples > 0);
}

const VIEW_NAME = { adversarial: 'under attack', clean: 'clean input' } as const;
const VARIABILITY_MAX = 0.5;

interface MapCell {
  readonly run: string;
  readonly view: DataMapCell['view'];
  readonly category: string;
  /** the bin's centre (DataMapCell's) */
  readonly confidence: number;
  readonly variability: number;
  examples: number;
}

/**
 * A 2-D histogram per category (noisy / clean label, or outcome) and view: each of the 20 × 20 bins is a
 * rectangle whose colour is its number of examples (log scale, shared by every panel). Circles sized by
 * count overlapped their neighbours, and a noisy and a clean bin at the same place hid each other: here
 * no mark covers another, and where the examples pile up is where the colour is darkest.
 */
function mapSpec(runs: readonly ReportRun[], categories: readonly string[], cells: readonly MapCell[]) {
  const multi = runs.length > 1;
  const cw = 1 / DATA_MAP_BINS / 2;
  const vw = VARIABILITY_MAX / DATA_MAP_BINS / 2;
  const rowName = (run: string, view: DataMapCell['view']) => (multi ? `${run} · ${VIEW_NAME[view]}` : VIEW_NAME[view]);
  const rows = runs.flatMap((r) => (['adversarial', 'clean'] as const).map((v) => rowName(r.label, v)));
  // Facet keys that sort by themselves ('003|trades · under attack'; the headers print what follows '|'):
  // with row and column facets, Vega-Lite crosses them so a panel with no data (no memorized example) is
  // still drawn, but a sort array leaves those crossed panels without a sort index and shifts the grid.
  const key = (i: number, name: string) => `${String(i).padStart(3, '0')}|${name}`;
  const values = cells.map((c) => {
    const view = rowName(c.run, c.view);
    return {
      run: c.run,
      view,
      category: c.category,
      rowKey: key(rows.indexOf(view), view),
      columnKey: key(categories.indexOf(c.category), c.category),
      variability: c.variability,
      v0: c.variability - vw,
      v1: c.variability + vw,
      confidence: c.confidence,
      c0: c.confidence - cw,
      c1: c.confidence + cw,
      examples: c.examples,
    };
  });
  const wide = categories.length > 2;
  // legend entries at 1, 2, 5, 10, … (a log scale's own ticks read 20, 10, 4, 3, 2, 1)
  const most = Math.max(1, ...values.map((v) => v.examples));
  const steps = [1, 2, 5]
    .flatMap((m) => Array.from({ length: 8 }, (_, k) => m * 10 ** k))
    .filter((v) => v <= most)
    .sort((a, b) => a - b);
  const label = "slice(datum.value, indexof(datum.value, '|') + 1)";
  return {
    data: { values },
    facet: {
      column: {
        field: 'columnKey',
        type: 'nominal',
        sort: 'ascending',
        title: null,
        header: { labelExpr: label, labelFontSize: 12, labelLimit: 0 },
      },
      row: {
        field: 'rowKey',
        type: 'nominal',
        sort: 'ascending',
        title: null,
        header: { labelExpr: label, labelFontSize: 12, labelAngle: 0, labelAlign: 'left', labelLimit: 0 },
      },
    },
    spec: {
      // 20 bins: 6.5 px or more per bin; 130 px is the least height the y title fits in without reaching the next row's
      width: wide ? 150 : multi ? 190 : 220,
      height: wide ? 130 : multi ? 150 : 170,
      mark: { type: 'rect' },
      encoding: {
        x: {
          field: 'v0',
          type: 'quantitative',
          title: 'variability (std of p(label))',
          scale: { domain: [0, VARIABILITY_MAX], nice: false },
        },
        x2: { field: 'v1' },
        y: { field: 'c0', type: 'quantitative', title: 'confidence (mean p(label))', scale: { domain: [0, 1], nice: false } },
        y2: { field: 'c1' },
        color: {
          field: 'examples',
          type: 'quantitative',
          title: 'examples',
          scale: { type: 'log', scheme: 'viridis', reverse: true },
          legend: { orient: 'right', format: 'd', values: steps },
        },
        tooltip: [
          ...(multi ? [{ field: 'run' }] : []),
          { field: 'view' },
          { field: 'category' },
          { field: 'confidence', type: 'quantitative', format: '.3f', title: 'bin: confidence' },
          { field: 'variability', type: 'quantitative', format: '.3f', title: 'bin: variability' },
          { field: 'examples', type: 'quantitative' },
        ],
      },
    },
  };
}

/** Data map of noisy vs clean labels. */
export function dataMapByLabelFigure(runs: readonly ReportRun[]): Figure | null {
  const rs = mapped(runs);
  if (rs.length === 0) return null;
  const sum = new Map<string, MapCell>();
  for (const r of rs) {
    for (const c of r.dataMap!.cells) {
      const category = c.outcome.startsWith('noisy') ? 'noisy labels' : 'clean labels';
      const key = `${r.label}|${c.view}|${category}|${c.confidence_bin}|${c.variability_bin}`;
      const cell = sum.get(key) ?? {
        run: r.label,
        view: c.view,
        category,
        confidence: c.confidence,
        variability: c.variability,
        examples: 0,
      };
      cell.examples += c.examples;
      sum.set(key, cell);
    }
  }
  const d = rs[0].dataMap!;
  return {
    id: 'data-map',
    title: 'Adversarial data map: noisy vs clean labels',
    note:
      `Per training example over ` +
      `${rs.length > 1 ? 'the logged epochs' : `${d.epochs} logged epochs (${d.phase} pass)`}: ` +
      `mean (confidence) and standard deviation (variability) of p(label ` +
      `trained on), under attack and on clean input (Swayamdipta et al. ` +
      `2020). Binned ${DATA_MAP_BINS}×${DATA_MAP_BINS}; colour = examples in ` +
      `the bin (log scale).`,
    spec: mapSpec(rs, ['noisy labels', 'clean labels'], [...sum.values()]),
  };
}

/** Data map by outcome: memorized / not (noisy labels), forgotten / never forgotten (clean). */
export function dataMapByOutcomeFigure(runs: readonly ReportRun[]): Figure | null {
  const rs = mapped(runs);
  if (rs.length === 0) return null;
  const cells = rs.flatMap((r) =>
    r.dataMap!.cells.map((c) => ({
      run: r.label,
      view: c.view,
      category: c.outcome,
      confidence: c.confidence,
      variability: c.variability,
      examples: c.examples,
    })),
  );
  return {
    id: 'data-map-outcome',
    title: 'Adversarial data map: memorized and forgotten examples',
    note:
      'Memorized: a noisy-labelled example fit under attack at its last ' +
      'evaluation. Forgotten: a clean-labelled example that went from ' +
      'correct to wrong under attack at least once. Colour = examples in the ' +
      'bin (log scale).',
    spec: mapSpec(rs, OUTCOMES, cells),
  };
}

/** Forgetting events per example, clean and under attack, noisy vs clean labels. */
export function forgettingHistogramFigure(runs: readonly ReportRun[]): Figure | null {
  const rs = mapped(runs);
  if (rs.length === 0) return null;
  const values = rs.flatMap((r) =>
    r.dataMap!.forgetting.map((b) => ({
      run: r.label,
      kind: b.kind,
      events: b.events,
      label: b.is_noisy ? 'noisy' : 'clean',
      examples: b.examples,
    })),
  );
  return {
    id: 'forgetting-histogram',
    title: 'Forgetting events per example',
    note:
      'How many times each training example went from correct to wrong ' +
      'between consecutive evaluations (Toneva et al. 2019), on clean input ' +
      'and under attack.',
    spec: {
      data: { values },
      facet: {
        column: {
          field: 'kind',
          type: 'nominal',
          sort: ['adversarial', 'clean'],
          title: null,
          header: { labelExpr: "datum.value == 'adversarial' ? 'under attack' : 'clean input'", labelFontSize: 12 },
        },
        ...rowFacet(rs),
      },
      spec: {
        width: rs.length > 1 ? 200 : 260,
        height: rs.length > 1 ? 120 : 170,
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'events', type: 'ordinal', title: 'forgetting events', axis: { labelAngle: 0 } },
          xOffset: { field: 'label', sort: ['noisy', 'clean'] },
          y: { field: 'examples', type: 'quantitative', title: 'examples' },
          color: LABEL_COLORS,
          tooltip: [
            { field: 'run' },
            { field: 'label' },
            { field: 'events', type: 'quantitative' },
            { field: 'examples', type: 'quantitative' },
          ],
        },
      },
    },
  };
}

export function dataMapFigures(runs: readonly ReportRun[]): Figure[] {
  return [dataMapByLabelFigure(runs), dataMapByOutcomeFigure(runs), forgettingHistogramFigure(runs)].filter((f): f is Figure => f !== null);
}
