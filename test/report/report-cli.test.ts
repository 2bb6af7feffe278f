import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildProgram } from '../../src/cli/main';
import { AtflowError } from '../../src/core/errors';
import { findChromium } from '../../src/report/figure-export';
import { syntheticRun } from '../logs/synthetic-run';
import { writeRun } from '../logs/run-sink';

/** `atflow report`: a run folder, several, a folder of runs (sweep page), figure export, bad input. */
async function atflow(args: string[]): Promise<{ out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += c.toString()), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += c.toString()), true));
  try {
    await buildProgram()
      .exitOverride()
      .parseAsync(['node', 'atflow', ...args]);
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  return { out, err };
}

let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-report-cli-'));
  await writeRun(syntheticRun({ runDir: path.join(dir, 'runs', 'pgd'), runId: 'pgd', n: 40, epochs: 3, batch: 20 }));
  await writeRun(
    syntheticRun({ runDir: path.join(dir, 'runs', 'trades'), runId: 'trades', n: 40, epochs: 3, batch: 20, seed: 3, trainer: 'trades' }),
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('one run → <runDir>/report.html; a folder of runs → the sweep page; -o for several', async () => {
  const one = path.join(dir, 'runs', 'pgd');
  expect((await atflow(['report', one])).out.trim()).toBe(path.join(one, 'report.html'));
  const sweep = (await atflow(['report', path.join(dir, 'runs')])).out.trim();
  expect(sweep).toBe(path.join(dir, 'runs', 'report.html'));
  expect(fs.readFileSync(sweep, 'utf8')).toContain('id="sweep-summary"');
  const both = path.join(dir, 'both.html');
  await atflow(['report', one, path.join(dir, 'runs', 'trades'), '-o', both]);
  expect(fs.readFileSync(both, 'utf8')).toContain('<title>atflow report: pgd, trades</title>');
});

test('--format svg --figure writes the chosen figures; bad --format / --figure / folder are clear errors', async () => {
  const one = path.join(dir, 'runs', 'pgd');
  const res = await atflow(['report', one, '--format', 'svg', '--figure', 'accuracy', 'data-map', '-o', path.join(dir, 'figs')]);
  expect(res.out.trim().split('\n')).toEqual([path.join(dir, 'figs', 'accuracy.svg'), path.join(dir, 'figs', 'data-map.svg')]);
  await expect(atflow(['report', one, '--format', 'jpeg'])).rejects.toThrow(
    new AtflowError('ARGUMENT', "--format 'jpeg': expected one of html, svg, png, pdf"),
  );
  await expect(atflow(['report', one, '--format', 'svg', '--figure', 'nope'])).rejects.toThrow(/--figure nope: no such figure here/);
  await expect(atflow(['report', path.join(dir, 'nothing')])).rejects.toThrow(
    /is neither a sweep folder .* nor a folder of run folders|is not a run folder/,
  );
});

test('--format pdf writes one PDF per figure through headless Chromium, or SVG with a message where there is none', async () => {
  const one = path.join(dir, 'runs', 'trades');
  const res = await atflow(['report', one, '--format', 'pdf', '--figure', 'best-minus-current', '-o', path.join(dir, 'pdfs')]);
  if (findChromium()) {
    expect(res.out.trim()).toBe(path.join(dir, 'pdfs', 'best-minus-current.pdf'));
    expect(fs.readFileSync(res.out.trim()).subarray(0, 5).toString()).toBe('%PDF-');
    expect(res.err).toBe('');
  } else {
    expect(res.out.trim()).toBe(path.join(dir, 'pdfs', 'best-minus-current.svg'));
    expect(res.err).toMatch(/PDF needs headless Chromium/);
  }
});
