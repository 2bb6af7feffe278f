/**
 * Size and render time of report.html for a long run: a synthesized run of `--epochs` epochs ×
 * `--examples` examples (train + eval rows each epoch, events from the real detector) written through
 * the real Parquet sink, then `writeReport`, then headless Chromium loading the page until every
 * figure is live. Prints one JSON object. Targets (issue 16): < 5 MB, < 3 s in Chromium.
 *   npx tsx bench/report-size.ts [--epochs 100] [--examples 10000]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeReport } from '../src/report/report';
import { findChromium } from '../src/report/figure-export';
import { syntheticRun } from '../test/logs/synthetic-run';
import { writeRun } from '../test/logs/run-sink';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

async function main(): Promise<void> {
  const epochs = arg('epochs', 100);
  const n = arg('examples', 10000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-report-bench-'));
  try {
    const runDir = path.join(dir, 'run');
    let t = Date.now();
    await writeRun(syntheticRun({ runDir, runId: 'long', n, epochs, batch: 500 }));
    const writeMs = Date.now() - t;
    t = Date.now();
    const file = await writeReport([runDir]);
    const reportMs = Date.now() - t;
    const bytes = fs.statSync(file).size;
    // Chromium: `load` (the static SVG figures are drawn) and every figure live (vega-embed done);
    // median of 3 fresh pages
    let chromium: { loadMs: number; liveMs: number } | null = null;
    const exe = findChromium();
    if (exe) {
      const { chromium: pw } = await import('playwright-core');
      const browser = await pw.launch({ executablePath: exe, args: ['--no-sandbox', '--disable-gpu'] });
      const loads: number[] = [];
      const lives: number[] = [];
      for (let rep = 0; rep < 3; rep++) {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        t = Date.now();
        await page.goto(`file://${file}`, { waitUntil: 'load' });
        loads.push(Date.now() - t);
        await page.waitForFunction("document.querySelectorAll('.vega-static').length === 0", null, { timeout: 60000 });
        lives.push(Date.now() - t);
        await page.close();
      }
      await browser.close();
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1];
      chromium = { loadMs: median(loads), liveMs: median(lives) };
    }
    process.stdout.write(
      JSON.stringify({
        epochs,
        examples: n,
        examplesRows: 2 * epochs * n,
        parquetWriteMs: writeMs,
        reportMs,
        reportBytes: bytes,
        chromium,
        loadAverage: os.loadavg()[0],
      }) + '\n',
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
