import { OUTCOMES } from './data-map';
import type { Figure } from './report-figures';
import type { ReportRun } from './report-data';

/**
 * The adversarial data maps and the forgetting histogram (src/report/data-map.ts computes the
 * aggregates): binned, so their size does not depend on the number of examples or epochs.
 */
const LABEL_COLORS = { field: 'label', type: 'nominal', title: 'label', sort: ['noisy', 'clean'], scale: { domain: ['noisy', 'clean'], range: ['#d62728', '#1f77b4'] }, legend: { orient: 'bottom' } };

function rowFacet(runs: readonly ReportRun[]): Record<string, unknown> {
  return runs.length > 1 ? { row: { field: 'run', type: 'nominal', sort: runs.map((r) => r.label), title: null, header: { labelAngle: 0, labelAlign: 'left', labelLimit: 0, labelFontSize: 11 } } } : {};
}

function mapped(runs: readonly ReportRun[]) {
  return runs.filter((r) => r.dataMap && r.dataMap.examples > 0);
}

function mapSpec(runs: readonly ReportRun[], color: Record<string, unknown>, values: unknown[]) {
  const small = runs.length > 1;
  return {
    data: { values },
    facet: { column: { field: 'view', type: 'nominal', sort: ['adversarial', 'clean'], title: null, header: { labelExpr: "datum.value == 'adversarial' ? 'under attack' : 'clean input'", labelFontSize: 12 } }, ...rowFacet(runs) },
    spec: {
      width: small ? 200 : 260,
      height: small ? 170 : 230,
      mark: { type: 'circle', opacity: 0.65, stroke: 'white', strokeWidth: 0.4 },
      encoding: {
        x: { field: 'variability', type: 'quantitative', title: 'variability (std of p(label))', scale: { domain: [0, 0.5] } },
        y: { field: 'confidence', type: 'quantitative', title: 'confidence (mean p(label))', scale: { domain: [0, 1] } },
        size: { field: 'examples', type: 'quantitative', title: 'examples', legend: { orient: 'bottom' }, scale: { range: [12, 360] } },
        color,
        tooltip: [{ field: 'run' }, { field: color.field as string }, { field: 'confidence', type: 'quantitative', format: '.3f', title: 'bin: confidence' }, { field: 'variability', type: 'quantitative', format: '.3f', title: 'bin: variability' }, { field: 'examples', type: 'quantitative' }],
      },
    },
    resolve: { scale: { size: 'shared' } },
  };
}

/** Data map coloured by noisy vs clean label. */
export function dataMapByLabelFigure(runs: readonly ReportRun[]): Figure | null {
  const rs = mapped(runs);
  if (rs.length === 0) return null;
  const sum = new Map<string, Record<string, unknown> & { examples: number }>();
  for (const r of rs) {
    for (const c of r.dataMap!.cells) {
      const label = c.outcome.startsWith('noisy') ? 'noisy' : 'clean';
      const key = `${r.label}|${c.view}|${label}|${c.confidence_bin}|${c.variability_bin}`;
      const cell = sum.get(key) ?? { run: r.label, view: c.view, label, confidence: c.confidence, variability: c.variability, examples: 0 };
      cell.examples += c.examples;
      sum.set(key, cell);
    }
  }
  const d = rs[0].dataMap!;
  return {
    id: 'data-map',
    title: 'Adversarial data map: noisy vs clean labels',
    note: `Per training example over ${rs.length > 1 ? 'the logged epochs' : `${d.epochs} logged epochs (${d.phase} pass)`}: mean (confidence) and standard deviation (variability) of p(label trained on), under attack and on clean input (Swayamdipta et al. 2020). Binned ${20}×${20}; circle area = examples.`,
    spec: mapSpec(rs, LABEL_COLORS, [...sum.values()]),
  };
}

/** Data map coloured by outcome: memorized / not (noisy labels), forgotten / never forgotten (clean). */
export function dataMapByOutcomeFigure(runs: readonly ReportRun[]): Figure | null {
  const rs = mapped(runs);
  if (rs.length === 0) return null;
  const values = rs.flatMap((r) => r.dataMap!.cells.map((c) => ({ run: r.label, view: c.view, outcome: c.outcome, confidence: c.confidence, variability: c.variability, examples: c.examples })));
  return {
    id: 'data-map-outcome',
    title: 'Adversarial data map: memorized and forgotten examples',
    note: 'Memorized: a noisy-labelled example fit under attack at its last evaluation. Forgotten: a clean-labelled example that went from correct to wrong under attack at least once.',
    spec: mapSpec(rs, { field: 'outcome', type: 'nominal', title: 'outcome', sort: [...OUTCOMES], scale: { domain: [...OUTCOMES], range: ['#d62728', '#ff9896', '#ff7f0e', '#1f77b4'] }, legend: { orient: 'bottom', columns: 2, labelLimit: 0 } }, values),
  };
}

/** Forgetting events per example, clean and under attack, noisy vs clean labels. */
export function forgettingHistogramFigure(runs: readonly ReportRun[]): Figure | null {
  const rs = mapped(runs);
  if (rs.length === 0) return null;
  const values = rs.flatMap((r) => r.dataMap!.forgetting.map((b) => ({ run: r.label, kind: b.kind, events: b.events, label: b.is_noisy ? 'noisy' : 'clean', examples: b.examples })));
  return {
    id: 'forgetting-histogram',
    title: 'Forgetting events per example',
    note: 'How many times each training example went from correct to wrong between consecutive evaluations (Toneva et al. 2019), on clean input and under attack.',
    spec: {
      data: { values },
      facet: { column: { field: 'kind', type: 'nominal', sort: ['adversarial', 'clean'], title: null, header: { labelExpr: "datum.value == 'adversarial' ? 'under attack' : 'clean input'", labelFontSize: 12 } }, ...rowFacet(rs) },
      spec: {
        width: rs.length > 1 ? 200 : 260,
        height: rs.length > 1 ? 120 : 170,
        mark: { type: 'bar' },
        encoding: {
          x: { field: 'events', type: 'ordinal', title: 'forgetting events', axis: { labelAngle: 0 } },
          xOffset: { field: 'label', sort: ['noisy', 'clean'] },
          y: { field: 'examples', type: 'quantitative', title: 'examples' },
          color: LABEL_COLORS,
          tooltip: [{ field: 'run' }, { field: 'label' }, { field: 'events', type: 'quantitative' }, { field: 'examples', type: 'quantitative' }],
        },
      },
    },
  };
}

export function dataMapFigures(runs: readonly ReportRun[]): Figure[] {
  return [dataMapByLabelFigure(runs), dataMapByOutcomeFigure(runs), forgettingHistogramFigure(runs)].filter((f): f is Figure => f !== null);
}
