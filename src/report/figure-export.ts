import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { fullSpec, renderPage } from './report';
import type { Figure } from './report-figures';
import { renderSvg } from './vega-runtime';
import { writeFileDurable } from '../core/durable-file';

/**
 * `atflow report --format svg|png|html`: one file per figure, for a paper. SVG comes from vega's
 * headless renderer; PNG from a real browser engine (headless Chromium drawing that SVG at 2× scale),
 * or, where no Chromium is installed, the SVG with a message saying so; HTML is a one-figure page.
 */
export type FigureFormat = 'svg' | 'png' | 'html';

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
  return ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', '--hide-scrollbars', `--user-data-dir=${profileDir}`];
}

function svgSize(svg: string): { width: number; height: number } {
  const w = Number(svg.match(/<svg[^>]*\swidth="([\d.]+)"/)?.[1]);
  const h = Number(svg.match(/<svg[^>]*\sheight="([\d.]+)"/)?.[1]);
  return { width: Math.ceil(w || 800), height: Math.ceil(h || 600) };
}

/** Rasterizes an SVG with headless Chromium (device scale 2); throws when Chromium fails. */
export function svgToPng(chromium: string, svg: string, outFile: string): void {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-png-'));
  try {
    const { width, height } = svgSize(svg);
    const page = path.join(tmp, 'figure.html');
    fs.writeFileSync(page, `<!DOCTYPE html><html><head><meta charset="utf-8"><style>html,body{margin:0;background:white}</style></head><body>${svg}</body></html>`);
    const shot = path.join(tmp, 'shot.png');
    const r = spawnSync(chromium, [...chromiumFlags(path.join(tmp, 'profile')), '--force-device-scale-factor=2', `--window-size=${width},${height}`, `--screenshot=${shot}`, `file://${page}`], { timeout: 60000, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0 || !fs.existsSync(shot)) throw new AtflowError('IO', `Chromium (${chromium}) could not rasterize the figure: ${(r.stderr ?? '').trim().split('\n').slice(-2).join(' ') || `exit ${r.status}`}`);
    writeFileDurable(outFile, fs.readFileSync(shot), { mkdir: true });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export interface ExportResult {
  readonly files: string[];
  /** Set when PNG was asked for but SVG written (no Chromium). */
  readonly message?: string;
}

/** Writes the chosen figures (all when `only` is empty) into outDir as <id>.<format>. */
export async function exportFigures(figures: readonly Figure[], format: FigureFormat, outDir: string, only: readonly string[] = []): Promise<ExportResult> {
  const unknown = only.filter((id) => !figures.some((f) => f.id === id));
  if (unknown.length) throw new AtflowError('ARGUMENT', `--figure ${unknown.join(', ')}: no such figure here; figures: ${figures.map((f) => f.id).join(', ')}`);
  const chosen = only.length ? figures.filter((f) => only.includes(f.id)) : figures;
  fs.mkdirSync(outDir, { recursive: true });
  const chromium = format === 'png' ? findChromium() : null;
  const files: string[] = [];
  for (const f of chosen) {
    if (format === 'html') {
      const file = path.join(outDir, `${f.id}.html`);
      writeFileDurable(file, await renderPage({ title: f.title, header: '', figures: [f] }), { mkdir: true });
      files.push(file);
      continue;
    }
    const svg = await renderSvg(fullSpec(f));
    if (format === 'png' && chromium) {
      const file = path.join(outDir, `${f.id}.png`);
      svgToPng(chromium, svg, file);
      files.push(file);
    } else {
      const file = path.join(outDir, `${f.id}.svg`);
      writeFileDurable(file, svg, { mkdir: true });
      files.push(file);
    }
  }
  const message = format === 'png' && !chromium ? 'PNG needs headless Chromium (apt-get install chromium, or set ATFLOW_CHROMIUM to a Chrome/Chromium binary); wrote SVG instead' : undefined;
  return { files, ...(message ? { message } : {}) };
}
