import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { isRunDir, loadReportRun, type ReportRun, withUniqueLabels } from '../report/report-data';
import { bestAndFinal, escapeHtml, renderPage, runTable } from '../report/report';
import { epochX, type Figure, percentAxis, WIDTH } from '../report/report-figures';
import { loadRuns } from '../config/spec';
import { readManifest } from './manifest';
import { writeFileDurable } from '../core/durable-file';
import { RunFolder } from '../store/run-folder';

/**
 * `atflow report <sweepDir>`: one page comparing every run of a sweep — a sortable best / final / gap
 * table with the sweep's axis values, small multiples of the curves, and a Table-2-style summary
 * over the noise-rate axis (or the first axis) with one column per method (the other axes).
 * <sweepDir> is `<out>/sweeps/<name>/` (its manifest.json names the runs), or any folder whose
 * sub-folders are run folders (the axes are then the setup fields that differ between runs).
 */
export interface SweepRun {
  readonly run: ReportRun;
  /** axis → value, as strings */
  readonly values: Record<string, string>;
}

export interface LoadedSweep {
  readonly name: string;
  readonly axes: string[];
  readonly runs: SweepRun[];
  /** Points of the manifest with no run folder yet. */
  readonly missing: string[];
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

export function isSweepDir(dir: string): boolean {
  if (fs.existsSync(path.join(dir, 'manifest.json'))) return true;
  return (
    !isRunDir(dir) && fs.existsSync(dir) && fs.statSync(dir).isDirectory() && fs.readdirSync(dir).some((d) => isRunDir(path.join(dir, d)))
  );
}

/** A run's name on a sweep page: its axis values ("rate=0.2 · trades"), the run id when they do not tell runs apart. */
function labelled(s: LoadedSweep): LoadedSweep {
  const name = (r: SweepRun) => s.axes.map((a) => (a === 'variant' ? r.values[a] : `${a.split('.').pop()}=${r.values[a]}`)).join(' · ');
  const names = s.runs.map(name);
  if (s.axes.length === 0 || new Set(names).size !== names.length) return s;
  return { ...s, runs: s.runs.map((r, i) => ({ ...r, run: { ...r.run, label: names[i] } })) };
}

export function loadSweep(dir: string): LoadedSweep {
  return labelled(loadSweepRuns(dir));
}

function loadSweepRuns(dir: string): LoadedSweep {
  const manifestFile = path.join(dir, 'manifest.json');
  if (fs.existsSync(manifestFile)) {
    const m = readManifest(manifestFile);
    const runs: SweepRun[] = [];
    const missing: string[] = [];
    for (const entry of m.runs) {
      const values = Object.fromEntries(Object.entries(entry.values).map(([k, v]) => [k, show(v)]));
      for (const r of loadRuns(entry.configPath)) {
        const runDir = RunFolder.of(m.outDir, r.runId).dir;
        if (!isRunDir(runDir)) {
          missing.push(r.runId);
          continue;
        }
        runs.push({ run: loadReportRun(runDir), values: r.variant ? { ...values, variant: r.variant } : values });
      }
    }
    const axes = [...m.axes.map((a) => a.path), ...(runs.some((r) => 'variant' in r.values) ? ['variant'] : [])];
    return { name: m.sweep, axes, runs, missing };
  }
  const dirs = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .sort()
        .map((d) => path.join(dir, d))
        .filter(isRunDir)
    : [];
  if (dirs.length === 0)
    throw new AtflowError(
      'DATA_FILE',
      `${dir} is neither a sweep folder (no manifest.json) nor a folder of run folders (no sub-folder has epochs.parquet)`,
      { path: dir },
    );
  const loaded = dirs.map(loadReportRun);
  const fields: Record<string, (r: ReportRun) => string> = {
    trainer: (r) => r.meta.trainer,
    te: (r) => (r.meta.te ? 'yes' : 'no'),
    'labelNoise.rate': (r) => String(r.meta.label_noise.rate),
    'attack.eps': (r) => String(r.meta.attack.eps),
  };
  const axes = Object.keys(fields).filter((k) => new Set(loaded.map(fields[k])).size > 1);
  return {
    name: path.basename(path.resolve(dir)),
    axes,
    runs: loaded.map((run) => ({ run, values: Object.fromEntries(axes.map((a) => [a, fields[a](run)])) })),
    missing: [],
  };
}

/** The axis a Table-2-style summary has as rows: the noise rate when swept, else the first axis. */
export function rowAxis(axes: readonly string[]): string | null {
  return axes.find((a) => /noise|rate/i.test(a)) ?? axes[0] ?? null;
}

const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}`);
const byValue = (a: string, b: string) =>
  Number.isFinite(Number(a)) && Number.isFinite(Number(b)) ? Number(a) - Number(b) : a.localeCompare(b);

/** Rows: the row axis' values; columns: methods (the other axes' values); cells: best / final (best − final), in %. */
export function summaryTable(s: LoadedSweep): string {
  const rowKey = rowAxis(s.axes);
  if (!rowKey) return '';
  const others = s.axes.filter((a) => a !== rowKey);
  const method = (r: SweepRun) => (others.length ? others.map((a) => r.values[a]).join(' · ') : 'run');
  const rows = [...new Set(s.runs.map((r) => r.values[rowKey]))].sort(byValue);
  const cols = [...new Set(s.runs.map(method))];
  const cellOf = (row: string, col: string) => {
    const hit = s.runs.filter((r) => r.values[rowKey] === row && method(r) === col);
    if (hit.length === 0) return '<td>–</td>';
    return `<td>${hit
      .map((h) => {
        const { best, final } = bestAndFinal(h.run);
        return `${pct(best)} / ${pct(final)} (${best !== null && final !== null ? pct(best - final) : '–'})`;
      })
      .join('<br>')}</td>`;
  };
  const head = cols.map((c) => `<th>${escapeHtml(others.length ? c : 'best / final (best − final), %')}</th>`).join('');
  return `<table id="sweep-summary"><thead><tr><th>${escapeHtml(rowKey)}</th>${head}</tr></thead><tbody>${rows
    .map((row) => `<tr><td>${escapeHtml(row)}</td>${cols.map((c) => cellOf(row, c)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** Test and train robust accuracy of every run, one small panel each. */
export function smallMultiplesFigure(runs: readonly ReportRun[]): Figure {
  const values = runs.flatMap((r) =>
    r.epochs.flatMap((e) =>
      (['train', 'test'] as const)
        .map((split) => ({ run: r.label, epoch: Number(e.epoch), split, accuracy: e[`${split}_robust_acc`] as number | null }))
        // epochs without an evaluation (eval.every > 1) are null: no point, never 0
        .filter((x) => x.accuracy !== null && Number.isFinite(x.accuracy)),
    ),
  );
  return {
    id: 'small-multiples',
    title: 'Robust accuracy of every run',
    note: 'One panel per run: test (solid) and train (dashed) robust accuracy per epoch.',
    spec: {
      data: { values },
      facet: { field: 'run', type: 'nominal', sort: runs.map((r) => r.label), title: null, header: { labelLimit: 0, labelFontSize: 11 } },
      columns: 4,
      spec: {
        width: 180,
        height: 120,
        mark: { type: 'line' },
        encoding: {
          x: epochX(runs),
          y: { field: 'accuracy', type: 'quantitative', title: 'robust accuracy', ...percentAxis(values.map((v) => v.accuracy as number)) },
          strokeDash: {
            field: 'split',
            type: 'nominal',
            sort: ['test', 'train'],
            legend: { orient: 'bottom', symbolType: 'stroke', encode: { symbols: { update: { stroke: { value: '#444' } } } } },
          },
          color: { value: '#1f77b4' },
          tooltip: [
            { field: 'run' },
            { field: 'split' },
            { field: 'epoch', type: 'quantitative' },
            { field: 'accuracy', type: 'quantitative', format: '.2%' },
          ],
        },
      },
    },
  };
}

/** Best and final test robust accuracy against the row axis, one colour per method. */
export function bestFinalFigure(s: LoadedSweep, runs: readonly ReportRun[]): Figure | null {
  const rowKey = rowAxis(s.axes);
  if (!rowKey) return null;
  const others = s.axes.filter((a) => a !== rowKey);
  const values = s.runs.flatMap((r, i) => {
    const { best, final } = bestAndFinal(r.run);
    const method = others.length ? others.map((a) => r.values[a]).join(' · ') : 'run';
    return (
      [
        ['best', best],
        ['final', final],
      ] as const
    )
      .filter(([, v]) => v !== null)
      .map(([which, v]) => ({ run: runs[i].label, x: r.values[rowKey], method, which, accuracy: v }));
  });
  const numeric = values.every((v) => Number.isFinite(Number(v.x)));
  return {
    id: 'best-final',
    title: `Best and final test robust accuracy vs ${rowKey}`,
    note: 'Solid with circles: best epoch; dashed with squares: final epoch. The distance between them is robust overfitting.',
    spec: {
      data: { values: numeric ? values.map((v) => ({ ...v, x: Number(v.x) })) : values },
      width: WIDTH * 2 + 40,
      height: 240,
      encoding: {
        x: { field: 'x', type: numeric ? 'quantitative' : 'ordinal', title: rowKey, axis: numeric ? {} : { labelAngle: 0 } },
        y: {
          field: 'accuracy',
          type: 'quantitative',
          title: 'test robust accuracy',
          ...percentAxis(values.map((v) => v.accuracy as number)),
        },
        color: {
          field: 'method',
          type: 'nominal',
          title: others.join(' · ') || 'method',
          legend: { labelLimit: 0, orient: 'bottom', direction: 'vertical' },
        },
        tooltip: [{ field: 'run' }, { field: 'method' }, { field: 'which' }, { field: 'accuracy', type: 'quantitative', format: '.2%' }],
      },
      layer: [
        {
          mark: { type: 'line' },
          encoding: {
            strokeDash: { field: 'which', type: 'nominal', sort: ['best', 'final'], title: 'epoch', legend: { orient: 'bottom' } },
            detail: { field: 'which' },
          },
        },
        {
          mark: { type: 'point', filled: true, size: 60 },
          encoding: {
            shape: {
              field: 'which',
              type: 'nominal',
              sort: ['best', 'final'],
              title: 'epoch',
              scale: { range: ['circle', 'square'] },
              legend: { orient: 'bottom' },
            },
          },
        },
      ],
    },
  };
}

export async function renderSweepReport(s: LoadedSweep): Promise<string> {
  const runs = withUniqueLabels(s.runs.map((r) => r.run));
  // the table has trainer and TE columns already; a folder of runs names those axes the same
  const extra = s.axes
    .filter((a) => a !== 'trainer' && a !== 'te')
    .map((a) => ({ name: a, value: (r: ReportRun) => s.runs[runs.indexOf(r)].values[a] ?? '' }));
  const missing = s.missing.length ? `<p class="banner" id="missing">Not run yet: ${s.missing.map(escapeHtml).join(', ')}.</p>` : '';
  const unfinished = runs.filter((r) => !r.finished);
  const open = unfinished.length
    ? `<p class="banner" id="unfinished">Unfinished: ${unfinished.map((r) => escapeHtml(r.label)).join(', ')} ` +
      `(their last logged epoch is shown).</p>`
    : '';
  const header =
    `${missing}${open}<h2>Runs</h2>${runTable(runs, extra)}<h2>Summary: ` +
    `best / final (best − final) test robust accuracy, %</h2>${summaryTable(s)}`;
  return renderPage({ title: `atflow sweep report: ${s.name} (${runs.length} runs)`, header, figures: sweepFigures(s) });
}

/** The sweep page's figures: small multiples, then best / final against the row axis. */
export function sweepFigures(s: LoadedSweep): Figure[] {
  const runs = withUniqueLabels(s.runs.map((r) => r.run));
  return [smallMultiplesFigure(runs), bestFinalFigure(s, runs)].filter((f): f is Figure => f !== null);
}

/** Writes `<sweepDir>/report.html` (or outFile) atomically; returns its path. */
export async function writeSweepReport(dir: string, outFile?: string): Promise<string> {
  const s = loadSweep(dir);
  if (s.runs.length === 0)
    throw new AtflowError(
      'DATA_FILE',
      `${dir}: none of the sweep's ${s.missing.length} run(s) has logs yet (${s.missing.slice(0, 3).join(', ')}…)`,
      { path: dir },
    );
  const file = outFile ?? path.join(dir, 'report.html');
  writeFileDurable(file, await renderSweepReport(s), { mkdir: true });
  return file;
}
