import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runSweep } from '../../src/sweep/run-sweep';
import { loadSweep, writeSweepReport } from '../../src/sweep/sweep-report';
import { exportFigures, findChromium } from '../../src/report/figure-export';
import { reportFigures } from '../../src/report/report';
import { loadReportRun, type ReportRun, withUniqueLabels } from '../../src/report/report-data';
import {
  browserTest,
  chromium,
  expectDensityVisible,
  expectEpochAxesWithin,
  expectPlainAxisTitles,
  openReport,
  readFigures,
  withBrowser,
} from './report-browser';
import { REPO, runTiny, tinyConfig, tinyOverrides } from '../logs/tiny-runs';

/**
 * The report of real (tiny) runs, opened in headless Chromium: the quickstart (TRADES vs PGD-AT,
 * random labels), the 4-variant robust-overfitting-cpu config, and a sweep page. Each page must load
 * without console errors, show the expected figures with marks, and have no two text labels
 * overlapping, with scripts on (the live Vega views) and off (the static SVG). Screenshots go to
 * test-artifacts/report/ (or $ATFLOW_TEST_ARTIFACTS).
 */
let dir: string;
let quickstart: string[];
let ro: string[];
let sweepDir: string;
const pages: Record<string, string> = {};
const ARTIFACTS = process.env.ATFLOW_TEST_ARTIFACTS ?? path.join(REPO, 'test-artifacts', 'report');

const RUN_FIGURES = ['accuracy', 'best-minus-current', 'events', 'gradient-norm', 'data-map', 'data-map-outcome', 'forgetting-histogram'];
const EXPECTED: Record<string, string[]> = {
  quickstart: RUN_FIGURES,
  'robust-overfitting': [...RUN_FIGURES.slice(0, 3), 'te-weight', ...RUN_FIGURES.slice(3)],
  sweep: ['small-multiples', 'best-final'],
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-report-'));
  const cfg = path.join(dir, 'configs');
  quickstart = await runTiny(tinyConfig(cfg, 'quickstart', 'quickstart.json', tinyOverrides()), path.join(dir, 'qs'));
  const te = { momentum: 0.9, start: 2, end: 6, weight: 30 };
  const roConfig = tinyConfig(cfg, 'robust-overfitting', 'robust-overfitting-cpu.json', {
    ...tinyOverrides({ epochs: 8, trainSize: 160 }),
    variants: { 'pgd-at-te': { trainer: { name: 'pgd-at', te } }, 'trades-te': { trainer: { name: 'trades', beta: 6, te } } },
  });
  ro = await runTiny(roConfig, path.join(dir, 'ro'));
  // a sweep over the label-noise rate (2 points × the quickstart's 2 variants), materialised as
  // `atflow sweep` does; its configs are run here in-process instead of by worker processes
  const base = tinyConfig(cfg, 'sweep-base', 'quickstart.json', tinyOverrides({ epochs: 4, trainSize: 64 }));
  const sweepFile = path.join(cfg, 'noise.json');
  fs.writeFileSync(
    sweepFile,
    JSON.stringify({
      base: path.basename(base),
      axes: { 'labelNoise.rate': [0.2, 1.0] },
      executor: { kind: 'local' },
      out: path.join(dir, 'sweep-runs'),
    }),
  );
  const sweep = await runSweep(sweepFile, { dryRun: true, onStatus: () => undefined });
  for (const r of sweep.materialised.manifest.runs) await runTiny(r.configPath, sweep.materialised.manifest.outDir);
  sweepDir = sweep.materialised.dir;
  pages.quickstart = path.join(dir, 'qs', 'quickstart-report.html');
  pages['robust-overfitting'] = path.join(dir, 'ro', 'robust-overfitting-report.html');
  pages.sweep = await writeSweepReport(sweepDir);
}, 600000);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('atflow run writes a self-contained report per run and one per config', () => {
  expect(quickstart.length).toBe(2);
  expect(ro.length).toBe(4);
  for (const d of [...quickstart, ...ro]) expect(fs.existsSync(path.join(d, 'report.html'))).toBe(true);
  for (const [name, file] of Object.entries(pages)) {
    const html = fs.readFileSync(file, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    // nothing loaded from elsewhere: no src/href to any URL, no <link>
    expect(html).not.toMatch(/<link|<script[^>]+src=|<img[^>]+src="http|url\(http/);
    const ids = [...html.matchAll(/<figure class="figure" id="fig-([\w-]+)"/g)].map((m) => m[1]);
    expect({ name, ids }).toEqual({ name, ids: EXPECTED[name] });
    // every figure carries its static SVG and its Vega-Lite spec
    expect((html.match(/<div class="vega-static"><svg/g) ?? []).length).toBe(ids.length);
    expect((html.match(/<script type="application\/json" class="vega-spec">/g) ?? []).length).toBe(ids.length);
  }
  // no TE weight for runs without TE (the quickstart has none)
  expect(fs.readFileSync(pages.quickstart, 'utf8')).not.toContain('fig-te-weight');
});

test('the sweep page: every run with its axis values, and a Table-2-style summary over the noise rate', () => {
  const s = loadSweep(sweepDir);
  expect(s.axes).toEqual(['labelNoise.rate', 'variant']);
  expect(s.runs.map((r) => `${r.values['labelNoise.rate']}/${r.values.variant}`).sort()).toEqual([
    '0.2/pgd-at',
    '0.2/trades',
    '1/pgd-at',
    '1/trades',
  ]);
  expect(s.missing).toEqual([]);
  const html = fs.readFileSync(pages.sweep, 'utf8');
  // rows: the noise rates; columns: the methods
  expect(html).toMatch(
    /<table id="sweep-summary"><thead><tr><th>labelNoise.rate<\/th><th>trades<\/th><th>pgd-at<\/th><\/tr><\/thead><tbody><tr><td>0.2<\/td>.*<tr><td>1<\/td>/,
  );
  // a folder of run folders is a sweep page too; its axes are the setup fields that differ
  const folder = loadSweep(path.join(dir, 'ro'));
  expect(folder.axes).toEqual(['trainer', 'te']);
  expect(folder.runs.length).toBe(4);
});

test('data map of robust overfitting: the noisy-labelled examples form their own low-confidence cluster', () => {
  for (const d of ro) {
    const run = loadReportRun(d);
    const dm = run.dataMap!;
    expect(dm.phase).toBe('eval');
    expect(dm.examples).toBe(160);
    const noisy = dm.lastEpochConfidence.find((c) => c.is_noisy)!;
    const clean = dm.lastEpochConfidence.find((c) => !c.is_noisy)!;
    expect(noisy.examples + clean.examples).toBe(160);
    expect(noisy.examples).toBeGreaterThan(10); // 20% symmetric noise
    // p(label trained on): clean labels are fit, noisy ones are not (yet) — two separate clusters
    expect(clean.p_label_clean - noisy.p_label_clean).toBeGreaterThan(0.15);
    expect(clean.p_label_adv).toBeGreaterThan(noisy.p_label_adv);
    // the binned map holds every example once per view
    for (const view of ['adversarial', 'clean'])
      expect(dm.cells.filter((c) => c.view === view).reduce((s, c) => s + c.examples, 0)).toBe(160);
  }
  // the page shows the same numbers
  const html = fs.readFileSync(pages['robust-overfitting'], 'utf8');
  expect(html).toContain('id="last-epoch-confidence"');
});

test('the report of an unfinished run says so', async () => {
  const copy = path.join(dir, 'unfinished');
  fs.cpSync(quickstart[0], copy, { recursive: true });
  fs.rmSync(path.join(copy, '_SUCCESS'));
  const { writeReport } = await import('../../src/report/report');
  const html = fs.readFileSync(await writeReport([copy]), 'utf8');
  expect(html).toMatch(/id="unfinished">Unfinished: \S+ — unfinished \(epoch 6 of 6\)/);
});

test('--format svg|png|html exports one file per figure', async () => {
  const out = path.join(dir, 'figures');
  const figs = reportFigures([loadReportRun(ro[0])]);
  const svg = await exportFigures(figs, 'svg', out, ['accuracy']);
  expect(svg.files).toEqual([path.join(out, 'accuracy.svg')]);
  expect(fs.readFileSync(svg.files[0], 'utf8')).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  const png = await exportFigures(figs, 'png', out, ['data-map']);
  if (findChromium()) {
    expect(png.message).toBeUndefined();
    const bytes = fs.readFileSync(png.files[0]);
    expect(bytes.subarray(1, 4).toString()).toBe('PNG');
    expect(bytes.readUInt32BE(16)).toBeGreaterThan(600); // width at 2× device scale
  } else {
    expect(png.files[0]).toMatch(/data-map\.svg$/);
    expect(png.message).toMatch(/PNG needs headless Chromium/);
  }
  const html = await exportFigures(figs, 'html', out, ['events']);
  const page = fs.readFileSync(html.files[0], 'utf8');
  expect((page.match(/<figure class="figure"/g) ?? []).length).toBe(1);
  expect(page).toContain('id="fig-events"');
  await expect(exportFigures(figs, 'svg', out, ['nope'])).rejects.toThrow(/--figure nope: no such figure here; figures: accuracy/);
});

interface PageCheck {
  figures: Array<{ id: string; marks: number; svgs: number }>;
  overlaps: string[];
  staticLeft: number;
}

/**
 * Runs in the page (a string: this project has no DOM typings): figures, their data marks, and every
 * pair of visible SVG text labels that overlap.
 */
const INSPECT = `(() => {
  const figures = [...document.querySelectorAll('figure.figure')].map((f) => ({
    id: f.dataset.figure,
    svgs: f.querySelectorAll('svg').length,
    marks: f.querySelectorAll('svg .role-mark > *').length,
  }));
  const overlaps = [];
  for (const f of document.querySelectorAll('figure.figure')) {
    const boxes = [...f.querySelectorAll('svg text')]
      .filter((t) => (t.textContent || '').trim() !== '' && getComputedStyle(t).opacity !== '0' && getComputedStyle(t).visibility !== 'hidden' && !t.closest('[opacity="0"]'))
      .map((t) => ({ text: t.textContent, r: t.getBoundingClientRect() }))
      .filter((b) => b.r.width > 0 && b.r.height > 0);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i].r, b = boxes[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        // glyph boxes include line spacing: an overlap is more than 1.5 px shared both ways
        if (w > 1.5 && h > 1.5) overlaps.push(f.dataset.figure + ': "' + boxes[i].text + '" x "' + boxes[j].text + '"');
      }
    }
  }
  return { figures, overlaps, staticLeft: document.querySelectorAll('.vega-static').length };
})()`;

if (!chromium) console.warn('report.test: no Chromium on PATH (apt-get install chromium): the browser checks are skipped');

browserTest(
  'headless Chromium: every page loads without console errors, figures have marks, no labels overlap, tick labels fit their axes, data maps show density',
  async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // the runs behind each page, for their epoch range and data maps
    const runsOf: Record<string, ReportRun[]> = {
      quickstart: quickstart.map(loadReportRun),
      'robust-overfitting': ro.map(loadReportRun),
      sweep: loadSweep(sweepDir).runs.map((r) => r.run),
    };
    await withBrowser(async (browser) => {
      for (const [name, file] of Object.entries(pages)) {
        for (const scripts of [true, false]) {
          const { page, problems } = await openReport(browser, file, scripts);
          const check = (await page.evaluate(INSPECT)) as PageCheck;
          expect({ name, scripts, problems }).toEqual({ name, scripts, problems: [] });
          expect(check.figures.map((f) => f.id)).toEqual(EXPECTED[name]);
          for (const f of check.figures) {
            expect({ name, figure: f.id, svgs: f.svgs > 0, marks: f.marks > 0 }).toEqual({ name, figure: f.id, svgs: true, marks: true });
          }
          expect(check.staticLeft).toBe(scripts ? 0 : EXPECTED[name].length);
          expect({ name, scripts, overlaps: check.overlaps }).toEqual({ name, scripts, overlaps: [] });
          // every axis of every figure: no tick label printed twice (0%, 0%, 1%, 1%)
          const figs = await readFigures(page);
          const repeated = figs.flatMap((f) =>
            f.axes
              .filter((a) => new Set(a.labels.map((l) => l.text)).size !== a.labels.length)
              .map((a) => `${f.id}: ${a.aria}: ${a.labels.map((l) => l.text).join(' ')}`),
          );
          expect({ name, scripts, repeated }).toEqual({ name, scripts, repeated: [] });
          const epochs = runsOf[name].flatMap((r) => r.epochs.map((e) => Number(e.epoch)));
          expectEpochAxesWithin(figs, Math.min(...epochs), Math.max(...epochs), `${name}, scripts ${scripts}`);
          expectPlainAxisTitles(figs);
          if (name !== 'sweep') expectDensityVisible(figs, withUniqueLabels(runsOf[name]));
          await page.screenshot({ path: path.join(ARTIFACTS, `${name}${scripts ? '' : '-static'}.png`), fullPage: true });
          // the first screen (table and accuracy curves): the README's picture
          if (scripts)
            await page.screenshot({ path: path.join(ARTIFACTS, `${name}-top.png`), clip: { x: 0, y: 0, width: 1000, height: 760 } });
          // each figure on its own, to look at
          if (scripts)
            for (const fig of await page.$$('figure.figure'))
              await fig.screenshot({ path: path.join(ARTIFACTS, `${name}-${await fig.getAttribute('data-figure')}.png`) });
          await page.close();
        }
      }
    });
  },
  240000,
);
