import type { Command } from 'commander';
import * as path from 'path';
import { AtflowError } from '../../core/errors';
import { isSweepDir, loadSweep, sweepFigures, writeSweepReport } from '../../sweep/sweep-report';
import { exportFigures, FIGURE_FORMATS, type FigureFormat } from '../../report/figure-export';
import { reportFigures, writeReport } from '../../report/report';
import { loadReportRun, withUniqueLabels } from '../../report/report-data';

/**
 * `atflow report <runDir...>`: report.html (Vega-Lite figures: static SVG + live view) for one run or
 * several overlaid; `atflow report <sweepDir>` compares every run of a sweep; `--format svg|png|pdf|html`
 * exports the figures one file each instead (pdf: vector, for a paper).
 */
export function register(program: Command): void {
  program
    .command('report')
    .description(
      'write a self-contained HTML report for run folders (several overlay) ' +
        'or a sweep folder; or export its figures one by one (--format ' +
        'svg|png|pdf|html)',
    )
    .argument('<dirs...>', 'run folders (runs/<run_id>), or one sweep folder (runs/sweeps/<name>, or a folder of run folders)')
    .option(
      '-o, --out <path>',
      'report file (default <runDir>/report.html, <sweepDir>/report.html, ' +
        './report.html for several runs); with --format, the folder for the ' +
        'figure files (default <first dir>/figures)',
    )
    .option(
      '--format <format>',
      'report (default): one page; svg | png | pdf | html: one file per figure (png and pdf through headless Chromium; pdf is vector)',
    )
    .option('--figure <id...>', 'with --format: only these figures (e.g. accuracy data-map)')
    .action(async (dirs: string[], opts: { out?: string; format?: string; figure?: string[] }) => {
      const sweep = dirs.length === 1 && isSweepDir(dirs[0]);
      if (opts.format === undefined || opts.format === 'report') {
        const file = sweep ? await writeSweepReport(dirs[0], opts.out) : await writeReport(dirs, opts.out);
        process.stdout.write(`${file}\n`);
        return;
      }
      if (!(FIGURE_FORMATS as readonly string[]).includes(opts.format))
        throw new AtflowError('ARGUMENT', `--format '${opts.format}': expected one of ${FIGURE_FORMATS.join(', ')}`);
      const figures = sweep ? sweepFigures(loadSweep(dirs[0])) : reportFigures(withUniqueLabels(dirs.map(loadReportRun)));
      const out = opts.out ?? path.join(dirs[0], 'figures');
      const res = await exportFigures(figures, opts.format as FigureFormat, out, opts.figure ?? []);
      if (res.message) process.stderr.write(`atflow report: ${res.message}\n`);
      for (const f of res.files) process.stdout.write(`${f}\n`);
    });
}
