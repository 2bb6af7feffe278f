import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { escapeHtml, fullSpec, renderPage } from './report';
import type { Figure } from './report-figures';
import { renderSvg } from './vega-runtime';
import { writeFileDurable } from '../core/durable-file';

/**
 * `atflow report --format svg|png|pdf|html`: one file per figure, for a paper. SVG comes from vega's
 * headless renderer; PNG and PDF from a real browser engine drawing that SVG: headless Chromium's
 * screenshot (2× scale) and its print to PDF, which keeps the SVG's paths and text as vector paths and
 * embedded fonts, on a page the figure's size. Where no Chromium is installed, the SVG is written with a
 * message saying so; HTML is a one-figure page.
 */
export type FigureFormat = 'svg' | 'png' | 'pdf' | 'html';
export const FIGURE_FORMATS: readonly FigureFormat[] = ['html', 'svg', 'png', 'pdf'];

/** A Chromium-family browser: $ATFLOW_CHROMIUM, else the first of chromium / chromium-browser / google-chrome on PATH. */
export function findChromium(): string | null {
  if (process.env.ATFLOW_CHROMIUM) return fs.existsSync(process.env.ATFLOW_CHROMIUM) ? process.env.ATFLOW_CHROMIUM : null;
  for (const c of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('which', [c], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

/** The flags the report tests and the PNG export start Chromium with (no network, no profile reuse). */
export function chromiumFlags(profileDir: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-dev-shm-usage',
    '--hide-scrollbars',
    `--user-data-dir=${profileDir}`,
  ];
}

function svgSize(svg: string): { width: number; height: number } {
  const w = Number(svg.match(/<svg[^>]*\swidth="([\d.]+)"/)?.[1]);
  const h = Number(svg.match(/<svg[^>]*\sheight="([\d.]+)"/)?.[1]);
  return { width: Math.ceil(w || 800), height: Math.ceil(h || 600) };
}

/**
 * The SVG alone on a page of its own size (no margin, white; the title is the PDF's), in a temporary folder; `draw` runs Chromium on it.
 */
function onPage(svg: string, title: string, draw: (page: string, size: { width: number; height: number }, tmp: string) => void): void {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-figure-'));
  try {
    const size = svgSize(svg);
    const page = path.join(tmp, 'figure.html');
    const css =
      `@page{size:${size.width}px ` +
      `${size.height}px;margin:0}html,body{margin:0;padding:0;background:white;` +
      `width:${size.width}px;height:${size.height}px;overflow:hidden}svg{display:block}`;
    fs.writeFileSync(
      page,
      `<!DOCTYPE html><html><head><meta ` +
        `charset="utf-8"><title>${escapeHtml(title)}</title><style>${css}</style></head><body>${svg}</body></html>`,
    );
    draw(page, size, tmp);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function runChromium(chromium: string, args: string[], out: string, what: string): Buffer {
  const r = spawnSync(chromium, args, { timeout: 60000, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0 || !fs.existsSync(out))
    throw new AtflowError(
      'IO',
      `Chromium (${chromium}) could not ${what} the figure: ` +
        ((r.stderr ?? '').trim().split('\n').slice(-2).join(' ') || `exit ${r.status}`),
    );
  return fs.readFileSync(out);
}

/** Rasterizes an SVG with headless Chromium (device scale 2); throws when Chromium fails. */
export function svgToPng(chromium: string, svg: string, outFile: string, title = 'figure'): void {
  onPage(svg, title, (page, { width, height }, tmp) => {
    const shot = path.join(tmp, 'shot.png');
    writeFileDurable(
      outFile,
      runChromium(
        chromium,
        [
          ...chromiumFlags(path.join(tmp, 'profile')),
          '--force-device-scale-factor=2',
          `--window-size=${width},${height}`,
          `--screenshot=${shot}`,
          `file://${page}`,
        ],
        shot,
        'rasterize',
      ),
      { mkdir: true },
    );
  });
}

/**
 * Prints an SVG to a one-page vector PDF with headless Chromium (its print path keeps paths and text as
 * such, fonts embedded, nothing rasterized); the page is the figure's size. Throws when Chromium fails.
 */
export function svgToPdf(chromium: string, svg: string, outFile: string, title = 'figure'): void {
  onPage(svg, title, (page, { width, height }, tmp) => {
    const pdf = path.join(tmp, 'figure.pdf');
    // --no-pdf-header-footer (Chromium ≥ 111) and its older name: no date, title or URL printed on the page
    const args = [
      ...chromiumFlags(path.join(tmp, 'profile')),
      '--no-pdf-header-footer',
      '--print-to-pdf-no-header',
      `--window-size=${width},${height}`,
      `--print-to-pdf=${pdf}`,
      `file://${page}`,
    ];
    writeFileDurable(outFile, runChromium(chromium, args, pdf, 'print'), { mkdir: true });
  });
}

export interface ExportResult {
  readonly files: string[];
  /** Set when PNG or PDF was asked for but SVG written (no Chromium). */
  readonly message?: string;
}

/** Writes the chosen figures (all when `only` is empty) into outDir as <id>.<format>. */
export async function exportFigures(
  figures: readonly Figure[],
  format: FigureFormat,
  outDir: string,
  only: readonly string[] = [],
): Promise<ExportResult> {
  const unknown = only.filter((id) => !figures.some((f) => f.id === id));
  if (unknown.length)
    throw new AtflowError(
      'ARGUMENT',
      `--figure ${unknown.join(', ')}: no such figure here; figures: ${figures.map((f) => f.id).join(', ')}`,
    );
  const chosen = only.length ? figures.filter((f) => only.includes(f.id)) : figures;
  fs.mkdirSync(outDir, { recursive: true });
  const browser = format === 'png' || format === 'pdf';
  const chromium = browser ? findChromium() : null;
  const files: string[] = [];
  for (const f of chosen) {
    if (format === 'html') {
      const file = path.join(outDir, `${f.id}.html`);
      writeFileDurable(file, await renderPage({ title: f.title, header: '', figures: [f] }), { mkdir: true });
      files.push(file);
      continue;
    }
    const svg = await renderSvg(fullSpec(f));
    if (browser && chromium) {
      const file = path.join(outDir, `${f.id}.${format}`);
      (format === 'png' ? svgToPng : svgToPdf)(chromium, svg, file, f.title);
      files.push(file);
    } else {
      const file = path.join(outDir, `${f.id}.svg`);
      writeFileDurable(file, svg, { mkdir: true });
      files.push(file);
    }
  }
  const message =
    browser && !chromium
      ? `${format.toUpperCase()} needs headless Chromium (apt-get install ` +
        `chromium, or set ATFLOW_CHROMIUM to a Chrome/Chromium binary); wrote ` +
        `SVG instead`
      : undefined;
  return { files, ...(message ? { message } : {}) };
}
