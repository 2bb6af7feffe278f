import * as path from 'path';
import { AtflowError } from '../core/errors';
import { describeEvalProtocol } from '../core/eval-protocol';
import { dataMapFigures } from './data-map-figures';
import { describeStop } from '../logs/summary';
import { loadReportRun, type ReportRun, withUniqueLabels } from './report-data';
import { type Figure, runFigures } from './report-figures';
import { browserBundles, renderSvg, vegaVersions } from './vega-runtime';
import { writeFileDurable } from '../core/durable-file';
import { RunFolder } from '../store/run-folder';

/**
 * report.html: one self-contained page (no external resource). Every figure is a Vega-Lite spec,
 * drawn here to a static SVG by vega's headless renderer; the spec (with its aggregated data) and
 * the vega / vega-lite / vega-embed bundles are inlined too, so with scripts on the page redraws
 * each figure live (tooltips, zoom and pan by drag and wheel, export), and with scripts off the
 * static SVG stays.
 *
 * Size: the inlined bundles are ~0.8 MB; the data are per-epoch series and binned data maps, so a
 * page grows with epochs × runs, never with the number of examples (see REPORT_SIZE_NOTE).
 */
export const REPORT_SIZE_NOTE =
  'Data are aggregated before they are embedded: per-epoch curves, ' +
  'per-epoch min/max of the step gradient norms, and 20 × 20 binned data ' +
  'maps, so the page grows with epochs × runs, not with examples or ' +
  'steps (a 100-epoch, 10,000-example run: 1.4 MB; ' +
  'bench/report-size.ts).';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that can sit inside <script> (no "</script>", no "<!--"). */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

const CONFIG = {
  font: 'sans-serif',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 10, titleFontSize: 11 },
  legend: { labelFontSize: 10, titleFontSize: 11 },
  title: { fontSize: 12 },
};

/** The spec as drawn and embedded: schema, shared config, padding. */
export function fullSpec(f: Figure): Record<string, unknown> {
  return { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG, padding: 6, ...f.spec };
}

/** One figure: caption, static SVG, and its spec for the live view. */
export async function renderFigure(f: Figure): Promise<string> {
  const spec = fullSpec(f);
  const svg = await renderSvg(spec);
  return `<figure class="figure" id="fig-${escapeHtml(f.id)}" data-figure="${escapeHtml(f.id)}">
<figcaption><h2>${escapeHtml(f.title)}</h2>${f.note ? `<p class="note">${escapeHtml(f.note)}</p>` : ''}</figcaption>
<div class="vega-static">${svg}</div>
<script type="application/json" class="vega-spec">${scriptJson(spec)}</script>
</figure>`;
}

const STYLE = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}h1{font-size:20px}h2{font-size:15px;margin:4px 0}
.note{color:#555;font-size:12px;margin:2px 0 6px;max-width:900px}figure{margin:22px 0}figcaption{margin-bottom:4px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}table.sortable th{cursor:pointer}
.banner{background:#fff3cd;border:1px solid #e0c36c;padding:6px 10px;font-size:13px;display:inline-block}
footer{color:#777;font-size:11px;margin-top:30px}.vega-embed{display:block}`;

/** Sorting for table.sortable (click a header), then the live figures; runs only with scripts on. */
const BOOT = `(function(){
document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){
var tb=th.closest('table').tBodies[0],rows=Array.prototype.slice.call(tb.rows),dir=th.dataset.dir==='asc'?-1:1;
th.dataset.dir=dir>0?'asc':'desc';
rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;var p=parseFloat(x),q=parseFloat(y);
return dir*(isNaN(p)||isNaN(q)?String(x).localeCompare(String(y)):p-q);});rows.forEach(function(r){tb.appendChild(r);});});});
if(typeof vegaEmbed!=='function')return;
document.querySelectorAll('figure.figure').forEach(function(fig){
var spec=JSON.parse(fig.querySelector('script.vega-spec').textContent),stat=fig.querySelector('.vega-static'),
live=document.createElement('div');
live.className='vega-live';fig.insertBefore(live,stat);
vegaEmbed(live,spec,{renderer:'svg',actions:{export:true,source:false,compiled:false,editor:false}})
.then(function(){stat.remove();},function(e){live.remove();console.warn('atflow report: live figure failed, static SVG kept',e);});
});})();`;

export interface PageOptions {
  readonly title: string;
  /** HTML above the figures (tables, banners). */
  readonly header: string;
  readonly figures: readonly Figure[];
}

export async function renderPage(o: PageOptions): Promise<string> {
  const figures: string[] = [];
  for (const f of o.figures) figures.push(await renderFigure(f));
  const v = vegaVersions();
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(o.title)}</title>
<style>${STYLE}</style>
</head><body><h1>${escapeHtml(o.title)}</h1>
${o.header}
${figures.join('\n')}
<footer>Drawn with Vega ${escapeHtml(v.vega)} / Vega-Lite ${escapeHtml(v.vegaLite)}; with scripts on, hover for values,
drag to pan and scroll to zoom a line chart (double-click resets), and use the … menu to save a figure.
${escapeHtml(REPORT_SIZE_NOTE)}</footer>
<script>${browserBundles()}</script>
<script>${BOOT}</script>
</body></html>
`;
}

const pct = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : '–');
const fmtNum = (x: number) => (Number.isFinite(x) ? String(Number(x.toPrecision(4))) : '?');
const cell = (text: string, sortValue: string | number = text) => `<td data-v="${escapeHtml(String(sortValue))}">${escapeHtml(text)}</td>`;

/** best epoch, best / final test robust accuracy of a run (best as the run's own rule chose it). */
export function bestAndFinal(r: ReportRun): { bestEpoch: number | null; best: number | null; final: number | null } {
  const last = r.epochs[r.epochs.length - 1];
  if (!last) return { bestEpoch: null, best: null, final: null };
  const best = r.epochs.find((x) => x.epoch === last.best_epoch) ?? last;
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return { bestEpoch: Number(best.epoch), best: n(best.test_robust_acc), final: n(last.test_robust_acc) };
}

/** finished, "finished, stopped early at epoch 7 of 12", "stopped at epoch 65 of 80" (its last row is not a final epoch), or unfinished. */
export function statusOf(r: ReportRun): string {
  const last = r.epochs[r.epochs.length - 1];
  const short = last && r.plannedEpochs && Number(last.epoch) < r.plannedEpochs ? { epoch: Number(last.epoch), of: r.plannedEpochs } : null;
  if (r.finished) return short ? `finished, ${describeStop({ ...short, reason: 'early' })}` : 'finished';
  if (short) return describeStop({ ...short, reason: 'interrupted' });
  return `unfinished (${last ? `epoch ${last.epoch}` : 'no epoch'}${r.plannedEpochs ? ` of ${r.plannedEpochs}` : ''})`;
}

/** The runs' summary table: setup, best / final / gap; sortable by any column with scripts on. */
export function runTable(
  runs: readonly ReportRun[],
  extraColumns: ReadonlyArray<{ name: string; value: (r: ReportRun) => string }> = [],
): string {
  const head = [
    'run',
    ...extraColumns.map((c) => c.name),
    'status',
    'trainer',
    'TE',
    'label noise',
    'attack',
    'evaluation',
    'best epoch',
    'best robust',
    'final robust',
    'best − final',
    'final clean',
    'robust gap',
  ];
  const body = runs.map((r) => {
    const { bestEpoch, best, final } = bestAndFinal(r);
    const last = r.epochs[r.epochs.length - 1];
    const a = r.meta.attack;
    const gap = last ? Number(last.train_robust_acc) - Number(last.test_robust_acc) : NaN;
    const drop = best !== null && final !== null ? best - final : null;
    const lastClean = last ? Number(last.test_clean_acc) : null;
    const cells = [
      cell(r.label),
      ...extraColumns.map((c) => cell(c.value(r))),
      cell(statusOf(r)),
      cell(r.meta.trainer),
      cell(r.meta.te ? 'yes' : 'no'),
      cell(`${r.meta.label_noise.kind} ${r.meta.label_noise.rate}`, r.meta.label_noise.rate),
      cell(`${a.norm} ε=${fmtNum(a.eps)} α=${fmtNum(a.alpha)} ×${a.steps}`),
      cell(r.evaluation ? describeEvalProtocol(r.evaluation) : '–'),
      cell(bestEpoch === null ? '–' : String(bestEpoch), bestEpoch ?? -1),
      cell(pct(best), best ?? -1),
      cell(pct(final), final ?? -1),
      cell(drop !== null ? pct(drop) : '–', drop ?? -1),
      cell(pct(lastClean ?? NaN), lastClean ?? -1),
      cell(pct(gap), Number.isFinite(gap) ? gap : -1),
    ];
    return `<tr>${cells.join('')}</tr>`;
  });
  return (
    `<table class="sortable" ` +
    `id="runs"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${body.join('')}</tbody></table>`
  );
}

/** Mean p(label) at the last evaluated epoch, noisy vs clean: the two clusters of the data map. */
export function lastEpochConfidenceTable(runs: readonly ReportRun[]): string {
  const rs = runs.filter((r) => r.dataMap && r.dataMap.lastEpochConfidence.length);
  if (rs.length === 0) return '';
  const rows = rs.flatMap((r) =>
    r.dataMap!.lastEpochConfidence.map(
      (c) =>
        `<tr>${cell(r.label)}${cell(String(r.dataMap!.lastEpoch))}${cell(c.is_noisy ? 'noisy' : 'clean')}` +
        `${cell(String(c.examples))}${cell(c.p_label_adv.toFixed(3))}${cell(c.p_label_clean.toFixed(3))}</tr>`,
    ),
  );
  return (
    `<table id="last-epoch-confidence"><thead><tr><th>run</th><th>epoch</th><th>label</th><th>examples</th><th>mean ` +
    `p(label) under attack</th><th>mean p(label) ` +
    `clean</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

/** `atflow eval` summaries (the AutoAttack hook of report-data.ts): one row per run and evaluation. */
export function evalsTable(runs: readonly ReportRun[]): string {
  const rows = runs.flatMap((r) => r.evals.map((e) => ({ run: r.label, ...e })));
  if (rows.length === 0) return '';
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.fields)))];
  const show = (v: unknown) => (typeof v === 'number' ? String(Number(v.toPrecision(6))) : v === undefined ? '–' : String(v));
  const head = keys.map((k) => `<th>${escapeHtml(k)}</th>`).join('');
  return `<h2>Evaluations (atflow eval)</h2><table id="evals"><thead><tr><th>run</th><th>evaluation</th>${head}</tr></thead><tbody>${rows
    .map((r) => `<tr>${cell(r.run)}${cell(r.name)}${keys.map((k) => cell(show(r.fields[k]))).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

function unfinishedBanner(runs: readonly ReportRun[]): string {
  const open = runs.filter((r) => !r.finished);
  if (open.length === 0) return '';
  return (
    `<p class="banner" id="unfinished">Unfinished: ` +
    `${open.map((r) => `${escapeHtml(r.label)} — ${escapeHtml(statusOf(r))}`).join('; ')}. ` +
    `The figures show the epochs logged so far.</p>`
  );
}

/** Figures of a set of runs (overlaid), per-run data maps included. */
export function reportFigures(runs: readonly ReportRun[]): Figure[] {
  return [...runFigures(runs), ...dataMapFigures(runs)];
}

export async function renderReport(runsIn: readonly ReportRun[]): Promise<string> {
  const runs = withUniqueLabels(runsIn);
  const header = `${unfinishedBanner(runs)}${runTable(runs)}
${evalsTable(runs)}
<h2>Data map clusters at the last evaluated epoch</h2>${lastEpochConfidenceTable(runs)}`;
  return renderPage({ title: `atflow report: ${runs.map((r) => r.label).join(', ')}`, header, figures: reportFigures(runs) });
}

/** Reads the run folders and writes the report atomically; returns its path. */
export async function writeReport(runDirs: readonly string[], outFile?: string): Promise<string> {
  if (runDirs.length === 0) throw new AtflowError('ARGUMENT', 'report: give at least one run folder');
  const runs = runDirs.map(loadReportRun);
  const file = outFile ?? (runDirs.length === 1 ? new RunFolder(runDirs[0]).file('report') : path.resolve('report.html'));
  writeFileDurable(file, await renderReport(runs), { mkdir: true });
  return file;
}
