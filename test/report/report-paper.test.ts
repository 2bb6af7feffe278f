import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { spawnSync } from 'child_process';
import { exportFigures } from '../../src/report/figure-export';
import { reportFigures, writeReport } from '../../src/report/report';
import { loadReportRun } from '../../src/report/report-data';
import { renderSvg } from '../../src/report/vega-runtime';
import { fullSpec } from '../../src/report/report';
import { duck, lit } from '../logs/duck';
import {
  browserTest,
  chromium,
  describedDatum,
  expectDensityVisible,
  expectEpochAxesWithin,
  expectPlainAxisTitles,
  figureOf as figure,
  openReport,
  readFigures,
  type RenderedFigure,
  tickValue,
  withBrowser,
} from './report-browser';
import { writeRun } from '../logs/run-sink';
import { syntheticRun } from '../logs/synthetic-run';

/**
 * The report's figures as a paper needs them, read back from headless Chromium with scripts on (the live
 * Vega views) and off (the static SVG): tick labels that say what they mark, epoch axes that end at the
 * run's last epoch, a zero where an epoch had no memorization event, axis titles in plain Unicode, data
 * maps whose marks hide none of each other, and a vector PDF. The logs are synthetic, written by the
 * Parquet sink, so each condition is certain to occur: a best − current range under two points over 80
 * epochs, and a run whose examples settle (no transition after epoch 9). report.test.ts runs the same
 * checks on real runs.
 */
let dir: string;
let long: string;
let quiet: string;
const pages: Record<'long' | 'quiet' | 'both', string> = { long: '', quiet: '', both: '' };
const LONG_EPOCHS = 80;
const QUIET_EPOCHS = 16;
const SETTLE = 9;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-report-paper-'));
  long = path.join(dir, 'long');
  quiet = path.join(dir, 'quiet');
  // best at epoch 20 (46%), then 0.03 points lower per epoch: best − current ends at 1.8 points
  await writeRun(
    syntheticRun({
      runDir: long,
      runId: 'long',
      n: 40,
      epochs: LONG_EPOCHS,
      batch: 40,
      testRobust: (e) => 0.4 + 0.003 * Math.min(e, 20) - 0.0003 * Math.max(0, e - 20),
    }),
  );
  await writeRun(syntheticRun({ runDir: quiet, runId: 'quiet', n: 40, epochs: QUIET_EPOCHS, batch: 20, settleFrom: SETTLE }));
  pages.long = await writeReport([long], path.join(dir, 'long.html'));
  pages.quiet = await writeReport([quiet], path.join(dir, 'quiet.html'));
  pages.both = await writeReport([long, quiet], path.join(dir, 'both.html'));
}, 120000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Both renderings of a page: the live views (scripts on) and the static SVG (scripts off). */
async function bothRenderings(file: string, check: (figs: RenderedFigure[], scripts: boolean) => void | Promise<void>): Promise<void> {
  await withBrowser(async (browser) => {
    for (const scripts of [true, false]) {
      const { page, problems } = await openReport(browser, file, scripts);
      expect({ scripts, problems }).toEqual({ scripts, problems: [] });
      await check(await readFigures(page), scripts);
      await page.close();
    }
  });
}

browserTest(
  'best − current: every tick label differs and sits where its value is, on a range under two points',
  async () => {
    // the reference range, from the log: best-so-far − current test robust accuracy
    const [{ worst }] = await duck(
      `SELECT max(best - test_robust_acc) AS worst FROM (SELECT test_robust_acc, max(test_robust_acc) OVER (ORDER BY epoch) AS best FROM read_parquet(${lit(path.join(long, 'epochs.parquet'))}))`,
    );
    expect(worst).toBeGreaterThan(0.01);
    expect(worst).toBeLessThan(0.02);
    await bothRenderings(pages.long, (figs, scripts) => {
      const y = figure(figs, 'best-minus-current').axes.find((a) => a.aria.startsWith('Y-axis'))!;
      const texts = y.labels.map((l) => l.text);
      expect({ scripts, texts, distinct: new Set(texts).size }).toEqual({ scripts, texts, distinct: texts.length });
      expect(texts.length).toBeGreaterThanOrEqual(3);
      // the values the labels print are a linear function of where they are drawn (rounded labels are not)
      const pts = y.labels.map((l) => ({ v: tickValue(l.text), y: l.cy }));
      expect(pts.every((p) => Number.isFinite(p.v))).toBe(true);
      const [a, b] = [pts[0], pts[pts.length - 1]];
      const slope = (b.v - a.v) / (b.y - a.y);
      for (const p of pts) expect(Math.abs(a.v + slope * (p.y - a.y) - p.v)).toBeLessThan(0.02 * Math.abs(b.v - a.v));
      // and they span the drop: the top label is within one step of the largest drop
      const step = Math.abs(pts[1].v - pts[0].v);
      expect(Math.max(...pts.map((p) => p.v))).toBeGreaterThan(worst - step);
    });
  },
  120000,
);

browserTest(
  'epoch axes run from the first to the last epoch (80, not 90), gradient-norm title in plain Unicode',
  async () => {
    await bothRenderings(pages.long, (figs, scripts) => {
      const top = expectEpochAxesWithin(figs, 1, LONG_EPOCHS, `long, scripts ${scripts}`);
      // every per-epoch figure of this run labels its last epoch
      expect(top).toEqual(top.map(() => LONG_EPOCHS));
      expectPlainAxisTitles(figs);
      const g = figure(figs, 'gradient-norm').axes.find((a) => a.aria.startsWith('Y-axis'))!;
      expect(g.title).toBe('squared gradient norm ‖∇θ‖²');
    });
    await bothRenderings(pages.quiet, (figs, scripts) => void expectEpochAxesWithin(figs, 1, QUIET_EPOCHS, `quiet, scripts ${scripts}`));
  },
  120000,
);

browserTest(
  'memorization events: a point at every observed epoch, zero where the log has no event',
  async () => {
    const logged = await duck(
      `SELECT epoch, event, CASE WHEN is_noisy THEN 'noisy' ELSE 'clean' END AS label, count(*) AS n FROM read_parquet(${lit(path.join(quiet, 'events.parquet'))}) WHERE phase = 'eval' GROUP BY ALL`,
    );
    const count = new Map(logged.map((r) => [`${r.epoch}|${r.event}|${r.label}`, r.n as number]));
    // the run settles at epoch 9: transitions into the settled state there, none after
    expect(logged.some((r) => r.epoch === SETTLE)).toBe(true);
    expect(logged.filter((r) => r.epoch > SETTLE)).toEqual([]);
    const expected: string[] = [];
    // eval-phase events compare an evaluation with the previous one: from the second evaluated epoch on
    for (let e = 2; e <= QUIET_EPOCHS; e++) {
      for (const event of ['learned', 'forgotten', 'robust_learned', 'robust_forgotten'])
        for (const label of ['noisy', 'clean']) expected.push(`${e}|${event}|${label}|${count.get(`${e}|${event}|${label}`) ?? 0}`);
    }
    await bothRenderings(pages.quiet, (figs) => {
      const points = figure(figs, 'events')
        .marks.filter((m) => m.type === 'symbol')
        .map((m) => describedDatum(m.aria));
      expect(points.map((d) => `${d.epoch}|${d.event}|${d.label}|${d.examples}`).sort()).toEqual([...expected].sort());
    });
  },
  120000,
);

browserTest(
  'data maps: one mark per occupied bin in its own panel, none covering another, darker where more examples are',
  async () => {
    await bothRenderings(pages.long, (figs) => expectDensityVisible(figs, [loadReportRun(long)]));
    // the settled run memorized no noisy label, the long one did: overlaid, the settled run's
    // 'noisy · memorized' panels are empty, and every bin still lands in the panel of its own run and outcome
    const [a, b] = [loadReportRun(long), loadReportRun(quiet)];
    expect(a.dataMap!.cells.some((c) => c.outcome === 'noisy · memorized')).toBe(true);
    expect(b.dataMap!.cells.filter((c) => c.outcome === 'noisy · memorized')).toEqual([]);
    await bothRenderings(pages.both, (figs) => expectDensityVisible(figs, [a, b]));
  },
  180000,
);

test('--format pdf: one vector page per figure, the size of its SVG, text as embedded fonts, no image', async () => {
  const figs = reportFigures([loadReportRun(long)]);
  const out = path.join(dir, 'pdf');
  const res = await exportFigures(figs, 'pdf', out, ['accuracy', 'data-map']);
  if (!chromium) {
    expect(res.files.map((f) => path.basename(f))).toEqual(['accuracy.svg', 'data-map.svg']);
    expect(res.message).toMatch(/PDF needs headless Chromium/);
    return;
  }
  expect(res.message).toBeUndefined();
  expect(res.files).toEqual([path.join(out, 'accuracy.pdf'), path.join(out, 'data-map.pdf')]);
  for (const [i, file] of res.files.entries()) {
    const svg = await renderSvg(fullSpec(figs.find((f) => f.id === ['accuracy', 'data-map'][i])!));
    const pdf = fs.readFileSync(file);
    const raw = pdf.toString('latin1');
    expect(raw.startsWith('%PDF-')).toBe(true);
    expect(raw.match(/\/Type\s*\/Page\b/g)?.length).toBe(1);
    // the page is the figure: SVG px → PDF pt (× 0.75)
    const [w, h] = [Number(svg.match(/<svg[^>]*\swidth="([\d.]+)"/)![1]), Number(svg.match(/<svg[^>]*\sheight="([\d.]+)"/)![1])];
    const box = raw
      .match(/\/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]/)!
      .slice(1)
      .map(Number);
    expect(Math.abs(box[2] - box[0] - 0.75 * Math.ceil(w))).toBeLessThan(1.5);
    expect(Math.abs(box[3] - box[1] - 0.75 * Math.ceil(h))).toBeLessThan(1.5);
    // vector: fonts embedded, no raster image anywhere, the page drawn with path and text operators
    expect(raw).toMatch(/\/FontFile2/);
    expect(raw).not.toMatch(/\/Subtype\s*\/Image/);
    const streams = [...raw.matchAll(/stream\r?\n/g)].map((m) => {
      const start = m.index! + m[0].length;
      const body = pdf.subarray(start, raw.indexOf('endstream', start));
      try {
        return zlib.inflateSync(body).toString('latin1');
      } catch {
        return '';
      }
    });
    const content = streams.filter((s) => /\bBT\b/.test(s) || /\bre\b|\bm\b/.test(s)).join('\n');
    expect(content).toMatch(/\bBT\b[\s\S]*?\bT[Jj]\b/); // text shown as text
    expect((content.match(/\s(?:re|c|l)\s/g) ?? []).length).toBeGreaterThan(50); // rectangles, curves, lines
    // pdftotext (poppler, where installed) reads back the figure's own words
    const text = spawnSync('pdftotext', [file, '-'], { encoding: 'utf8' });
    if (text.status === 0) {
      const words =
        i === 0
          ? ['clean accuracy', 'robust accuracy', 'epoch', '80', '100%', 'best', 'final']
          : ['noisy labels', 'clean labels', 'under attack', 'confidence (mean p(label))', 'variability (std of p(label))'];
      for (const word of words) expect(text.stdout).toContain(word);
    } else {
      console.warn('report-paper.test: no pdftotext (apt-get install poppler-utils): the PDF text read-back is skipped');
    }
  }
}, 120000);
