import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { RunnerCommand } from '../../src/sweep/runner';

/** A fresh temporary folder per test. */
export function tempDir(prefix = 'atflow-sweep-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeJson(file: string, value: unknown): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

/** Runs fixtures/fake-run.js (the `atflow run` contract without training) instead of atflow. */
export const fakeRunner: RunnerCommand = (config, out) => ({
  command: process.execPath,
  args: [path.join(__dirname, 'fixtures', 'fake-run.js'), config, '--out', out],
});

export interface TraceEvent {
  id: string;
  event: 'start' | 'resume' | 'skip' | 'end' | 'fail';
  t: number;
  gpu: string | null;
  config: string;
}

export function readTrace(out: string): TraceEvent[] {
  const file = path.join(out, '_trace.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as TraceEvent);
}

/** The largest number of runs alive at one instant, from their start/end (or fail) timestamps. */
export function maxOverlap(events: TraceEvent[]): number {
  const edges = events
    .filter((e) => e.event !== 'skip')
    .map((e) => ({ t: e.t, d: e.event === 'start' || e.event === 'resume' ? 1 : -1 }))
    // At equal times count the end first: a slot's next run starts only after its previous one exited.
    .sort((a, b) => a.t - b.t || a.d - b.d);
  let alive = 0;
  let max = 0;
  for (const e of edges) max = Math.max(max, (alive += e.d));
  return max;
}

/** fake-run.js's run folder for a config (sha256 of the file), to emulate `atflow run`'s run_id. */
export function fakeRunDir(configPath: string, out: string): string {
  const id = 'run-' + crypto.createHash('sha256').update(fs.readFileSync(configPath)).digest('hex').slice(0, 12);
  return path.join(out, id);
}
