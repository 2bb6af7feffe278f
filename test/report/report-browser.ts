import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { BrowserContext, Page } from 'playwright-core';
import { chromiumFlags, findChromium } from '../../src/report/figure-export';
import type { ReportRun } from '../../src/report/report-data';

/**
 * Headless Chromium for the report tests (playwright-core driving the system's Chromium, as the PNG and
 * PDF export start it), and what they read back from a rendered page: each figure's axes (title, visible
 * tick labels with their positions) and data marks (aria description, fill, box), as a reader sees them.
 */
export const chromium = findChromium();
export const browserTest = chromium ? test : test.skip;

export async function withBrowser<T>(fn: (browser: BrowserContext) => Promise<T>): Promise<T> {
  const { chromium: pw } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-chromium-'));
  const flags = chromiumFlags(profile).filter((f) => !/^--(headless|user-data-dir)/.test(f));
  const browser = await pw.launchPersistentContext(profile, {
    executablePath: chromium!,
    headless: true,
    args: flags,
    viewport: { width: 1280, height: 900 },
  });
  try {
    return await fn(browser);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

export const ALL_LIVE = "document.querySelectorAll('.vega-static').length === 0";

/**
 * Opens a report page with scripts on (waits for every live Vega view) or off (the static SVG only);
 * `problems` collects console errors / warnings and page errors.
 */
export async function openReport(browser: BrowserContext, file: string, scripts: boolean): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  if (!scripts) {
    const cdp = await browser.newCDPSession(page);
    await cdp.send('Emulation.setScriptExecutionDisabled', { value: true });
  }
  await page.goto(`file://${file}`);
  if (scripts) await page.waitForFunction(ALL_LIVE, null, { timeout: 30000 });
  return { page, problems };
}

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}
export interface RenderedAxis {
  /** Vega's description, e.g. "X-axis titled 'epoch' for a linear scale with values from 1 to 80" */
  aria: string;
  title: string;
  /** visible tick labels (opacity ≠ 0), with their centres */
  labels: Array<{ text: string; cx: number; cy: number }>;
}
export interface RenderedMark extends Box {
  /** the Vega mark type: 'symbol', 'line', 'rect', 'area', … (a line or an area is one element for its whole series) */
  type: string;
  /** Vega-Lite's description of the datum, "field: value; …" */
  aria: string;
  fill: string;
}
export interface RenderedFigure {
  id: string;
  /** facet headers: a row's label (its centre is the row's), a column's */
  headers: Array<{ kind: 'row' | 'column'; text: string; cx: number; cy: number }>;
  axes: RenderedAxis[];
  marks: RenderedMark[];
}

/** Runs in the page (a string: this project has no DOM typings). */
const READ_FIGURES = `(() => {
  const shown = (t) => (t.textContent || '').trim() !== '' && getComputedStyle(t).opacity !== '0' && getComputedStyle(t).visibility !== 'hidden' && !t.closest('[opacity="0"]');
  const box = (el) => { const r = el.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; };
  return [...document.querySelectorAll('figure.figure')].map((f) => ({
    id: f.dataset.figure,
    axes: [...f.querySelectorAll('svg g.role-axis[aria-roledescription="axis"]')].map((a) => ({
      aria: a.getAttribute('aria-label') || '',
      title: [...a.querySelectorAll('.role-axis-title text')].map((t) => t.textContent).join(' '),
      labels: [...a.querySelectorAll('.role-axis-label text')].filter(shown).map((t) => { const b = box(t); return { text: t.textContent, cx: b.x + b.w / 2, cy: b.y + b.h / 2 }; }),
    })),
    headers: [...f.querySelectorAll('svg g.role-row-header .role-title-text text, svg g.role-column-header .role-title-text text')].filter(shown).map((t) => { const b = box(t); return { kind: t.closest('.role-row-header') ? 'row' : 'column', text: t.textContent, cx: b.x + b.w / 2, cy: b.y + b.h / 2 }; }),
    marks: [...f.querySelectorAll('svg .role-mark > *')].map((el) => ({ type: (el.parentElement.getAttribute('class').match(/mark-(\\w+)/) || [])[1], aria: el.getAttribute('aria-label') || '', fill: getComputedStyle(el).fill, ...box(el) })),
  }));
})()`;

export async function readFigures(page: Page): Promise<RenderedFigure[]> {
  return (await page.evaluate(READ_FIGURES)) as RenderedFigure[];
}

/** "epoch: 12; examples: 0; label: clean" → { epoch: '12', examples: '0', label: 'clean' } */
export function describedDatum(aria: string): Record<string, string> {
  return Object.fromEntries(
    aria
      .split('; ')
      .map((kv) => kv.split(': '))
      .filter((p) => p.length >= 2)
      .map(([k, ...v]) => [k, v.join(': ')]),
  );
}

/** A tick label as a number: '1.5%' → 0.015, '−20' → -20, '80' → 80 (NaN when it is not one). */
export function tickValue(text: string): number {
  const t = text.replace('−', '-').replace(/,/g, '');
  return t.endsWith('%') ? Number(t.slice(0, -1)) / 100 : Number(t);
}

/** Relative luminance (sRGB) of a CSS colour 'rgb(r, g, b)'. */
export function luminance(css: string): number {
  const m = css.match(/rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)/);
  if (!m) return NaN;
  const lin = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  return 0.2126 * lin(Number(m[1])) + 0.7152 * lin(Number(m[2])) + 0.0722 * lin(Number(m[3]));
}

/** Pairs of boxes sharing more than `tol` px both ways. */
export function overlappingPairs<T extends Box>(boxes: readonly T[], tol = 0.5): Array<[T, T]> {
  const out: Array<[T, T]> = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i];
      const b = boxes[j];
      const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
      const h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
      if (w > tol && h > tol) out.push([a, b]);
    }
  }
  return out;
}

/** The figure with this id, or an error listing the ones there are. */
export function figureOf(figs: readonly RenderedFigure[], id: string): RenderedFigure {
  const f = figs.find((x) => x.id === id);
  if (!f) throw new Error(`no figure ${id} (have ${figs.map((x) => x.id).join(', ')})`);
  return f;
}

/**
 * Every axis titled 'epoch' shows only epochs in [first, last] (a niced, padded domain printed 85 and
 * 90 for an 80-epoch run); returns each such axis' largest label.
 */
export function expectEpochAxesWithin(figs: readonly RenderedFigure[], first: number, last: number, context: string): number[] {
  const tops: number[] = [];
  for (const f of figs) {
    for (const a of f.axes.filter((x) => x.title === 'epoch')) {
      const values = a.labels.map((l) => tickValue(l.text));
      const outside = values.filter((v) => !Number.isFinite(v) || v < first || v > last);
      expect({ context, figure: f.id, outside }).toEqual({ context, figure: f.id, outside: [] });
      tops.push(Math.max(...values));
    }
  }
  expect(tops.length).toBeGreaterThan(0);
  return tops;
}

/** No axis title carries TeX-like markup that SVG text prints literally (`_F`, `^2`, backslashes, $). */
export function expectPlainAxisTitles(figs: readonly RenderedFigure[]): void {
  const marked = figs.flatMap((f) => f.axes.filter((a) => /[_^\\$]/.test(a.title)).map((a) => `${f.id}: ${a.title}`));
  expect(marked).toEqual([]);
}

/**
 * The two data maps show each occupied bin as one mark, in the panel its row (run, view) and column
 * (label or outcome) headers name, with the count the run's data map holds (checked against DuckDB in
 * data-map.test.ts); no mark covers another; a bin's colour is darker the more examples it holds.
 */
export function expectDensityVisible(figs: readonly RenderedFigure[], runs: readonly ReportRun[]): void {
  const VIEW = { adversarial: 'under attack', clean: 'clean input' } as const;
  const maps: Array<[string, (outcome: string) => string]> = [
    ['data-map', (o) => (o.startsWith('noisy') ? 'noisy labels' : 'clean labels')],
    ['data-map-outcome', (o) => o],
  ];
  for (const [id, categoryOf] of maps) {
    const bins = new Map<string, number>();
    for (const r of runs) {
      for (const c of r.dataMap!.cells) {
        const row = runs.length > 1 ? `${r.label} · ${VIEW[c.view]}` : VIEW[c.view];
        const key = `${row}|${categoryOf(c.outcome)}|${c.confidence_bin}|${c.variability_bin}`;
        bins.set(key, (bins.get(key) ?? 0) + c.examples);
      }
    }
    const expected = [...bins.entries()].map(([k, n]) => `${k.split('|').slice(0, 2).join(' | ')} | ${n}`).sort();
    const fig = figureOf(figs, id);
    const nearest = (kind: 'row' | 'column', at: number) =>
      fig.headers
        .filter((h) => h.kind === kind)
        .reduce((best, h) =>
          Math.abs((kind === 'row' ? h.cy : h.cx) - at) < Math.abs((kind === 'row' ? best.cy : best.cx) - at) ? h : best,
        ).text;
    const shown = fig.marks.map((m) => Number(describedDatum(m.aria).examples));
    const placed = fig.marks.map((m, i) => `${nearest('row', m.y + m.h / 2)} | ${nearest('column', m.x + m.w / 2)} | ${shown[i]}`).sort();
    expect({ id, placed }).toEqual({ id, placed: expected });
    const covered = overlappingPairs(fig.marks).map(([a, b]) => `${a.aria} × ${b.aria}`);
    expect({ id, covered: covered.slice(0, 5), n: covered.length }).toEqual({ id, covered: [], n: 0 });
    // mean luminance per count, strictly falling as the count grows
    const lum = new Map<number, number[]>();
    fig.marks.forEach((m, i) => lum.set(shown[i], [...(lum.get(shown[i]) ?? []), luminance(m.fill)]));
    const ladder = [...lum.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([count, ls]) => ({ count, lum: ls.reduce((s, x) => s + x, 0) / ls.length }));
    expect(ladder.length).toBeGreaterThan(1);
    for (let i = 1; i < ladder.length; i++)
      expect({ id, from: ladder[i - 1], to: ladder[i], darker: ladder[i].lum < ladder[i - 1].lum }).toMatchObject({ darker: true });
  }
}
