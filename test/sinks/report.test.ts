import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeReport } from '../../src/sinks/report';
import { linePlot, niceTicks } from '../../src/sinks/svg-plot';
import { syntheticRun } from './synthetic-run';
import { writeRun } from './run-sink';

let dir: string;
let reportFile: string;
const PLOTS = ['plot-accuracy', 'plot-best-minus-final', 'plot-events', 'plot-te-weight', 'plot-gradient-norm'];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-report-'));
  await writeRun(syntheticRun({ runDir: path.join(dir, 'pgd-at'), runId: 'pgd-at', n: 60, epochs: 5, batch: 20 }));
  await writeRun(syntheticRun({ runDir: path.join(dir, 'pgd-at-te'), runId: 'pgd-at-te', n: 60, epochs: 5, batch: 20, seed: 8, teStart: 2 }));
  reportFile = writeReport([path.join(dir, 'pgd-at'), path.join(dir, 'pgd-at-te')], path.join(dir, 'report.html'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The <svg id=...>…</svg> element with that id, from markup. */
function svgById(html: string, id: string): string | undefined {
  return html.match(new RegExp(`<svg[^>]*id="${id}"[\\s\\S]*?</svg>`))?.[0];
}

function checkPlots(html: string) {
  for (const id of PLOTS) {
    const svg = svgById(html, id);
    expect(svg).toBeDefined();
    expect((svg!.match(/<polyline class="series"/g) ?? []).length).toBeGreaterThanOrEqual(2); // both runs overlaid
  }
  // complexity: one plot per measure
  for (const m of ['frobenius_prod', 'frobenius_sum', 'path_norm', 'spectral_prod']) expect(svgById(html, `plot-complexity-${m}`)).toBeDefined();
  // best and final are marked on the accuracy plot, for each run
  const acc = svgById(html, 'plot-accuracy')!;
  expect(acc).toContain('pgd-at · best 3');
  expect(acc).toContain('pgd-at-te · final');
}

test('report.html: self-contained, with every plot, runs overlaid', () => {
  const html = fs.readFileSync(reportFile, 'utf8');
  expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
  expect(html).not.toMatch(/<script|<link|src="http|href="http/); // no external resources, no scripts
  checkPlots(html);
  // the events plot splits noisy and clean labels
  const ev = svgById(html, 'plot-events')!;
  expect(ev).toContain('forgotten (noisy)');
  expect(ev).toContain('forgotten (clean)');
  // summary table: best − final robust accuracy of the synthetic run (0.6 at epoch 3, 0.5 at epoch 5)
  expect(html).toMatch(/<td>pgd-at<\/td><td>pgd-at<\/td><td>no<\/td><td>sym 0.2<\/td><td>linf ε=0.03137 α=0.007843 ×10<\/td><td>–<\/td><td>3<\/td><td>60.00%<\/td><td>50.00%<\/td><td>10.00%<\/td>/);
});

test('headless Chromium renders the report with its SVG plots', () => {
  const chromium = ['chromium', 'chromium-browser', 'google-chrome'].find((c) => spawnSync('which', [c]).status === 0);
  const html = fs.readFileSync(reportFile, 'utf8');
  if (!chromium) {
    // No browser on this machine: the markup must still be well-formed enough to render (checked
    // structurally: balanced svg elements, every plot present). Install with `apt-get install -y chromium`.
    expect((html.match(/<svg/g) ?? []).length).toBe((html.match(/<\/svg>/g) ?? []).length);
    checkPlots(html);
    return;
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-chromium-'));
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${profile}`];
  try {
    const dom = execFileSync(chromium, [...flags, '--dump-dom', `file://${reportFile}`], { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'ignore'] });
    // the DOM as the browser parsed it: every plot is an <svg> with its polylines
    checkPlots(dom);
    expect((dom.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(PLOTS.length + 4);
    const png = path.join(profile, 'shot.png');
    execFileSync(chromium, [...flags, `--screenshot=${png}`, '--window-size=1200,2400', `file://${reportFile}`], { timeout: 60000, stdio: 'ignore' });
    const bytes = fs.readFileSync(png);
    expect(bytes.subarray(1, 4).toString()).toBe('PNG');
    expect(bytes.length).toBeGreaterThan(20000); // a page of plots, not a blank screenshot
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
});

test('svg plot helper: nice ticks, log axes, escaping, no data', () => {
  expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6000000000000001, 0.8, 1]);
  expect(niceTicks(3, 47, 4)).toEqual([20, 40]); // raw step 11 → 20
  const svg = linePlot({ title: 'a<b', xLabel: 'α', yLabel: 'Δ', logX: true, series: [{ name: 'x&y', points: [[1e-4, 1], [1e-3, 2], [1e-2, 3], [0, 5]] }] });
  expect(svg).toContain('a&lt;b');
  expect(svg).toContain('x&amp;y');
  expect((svg.match(/<polyline[^>]*points="([^"]*)"/)![1].split(' ')).length).toBe(3); // α = 0 dropped on a log axis
  expect(linePlot({ title: 't', xLabel: 'x', yLabel: 'y', series: [] })).toContain('no data');
});
