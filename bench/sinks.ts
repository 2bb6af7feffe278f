/**
 * Benchmark of the Parquet sink: rows/s for a 1M-row examples table (target ≥ 1M rows/s), fed as
 * 'examples' RunEvents of `batch` rows through ParquetRunWriter (the object the pipeline awaits),
 * plus the Arrow IPC sink for comparison. Prints one JSON object.
 *   npx tsx bench/sinks.ts [--rows 1000000] [--batch 1000]
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { firstValueFrom, Subject } from 'rxjs';
import type { ExampleColumns } from '../src/core/records';
import type { RunEvent } from '../src/core/run-event';
import { Rng } from '../src/core/rng';
import { ParquetRunWriter } from '../src/logs/parquet-sink';
import { arrowSink } from '../src/logs/arrow-sink';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function batches(rows: number, batch: number, epochs: number): ExampleColumns[] {
  // a pool of distinct, realistic batches reused round-robin (generation is not what we measure)
  const rng = new Rng(1);
  const pool: ExampleColumns[] = [];
  for (let k = 0; k < 16; k++) {
    const f = (lo: number, hi: number) => rng.fillUniform(new Float32Array(batch), lo, hi);
    const ints = (n: number) => Int32Array.from({ length: batch }, () => rng.int(n));
    const bits = () => Uint8Array.from({ length: batch }, () => (rng.uniform() < 0.5 ? 1 : 0));
    pool.push({
      epoch: 1,
      phase: 'eval',
      example: new Int32Array(batch),
      label_true: ints(10),
      label_used: ints(10),
      is_noisy: bits(),
      loss_clean: f(0, 3),
      pred_clean: ints(10),
      correct_clean: bits(),
      p_label_clean: f(0, 1),
      margin_clean: f(-3, 3),
      loss_adv: f(0, 5),
      pred_adv: ints(10),
      correct_adv: bits(),
      p_label_adv: f(0, 1),
      margin_adv: f(-4, 2),
      te_target_entropy: f(0, 2.3),
      te_penalty: f(0, 0.1),
    });
  }
  const perEpoch = rows / epochs;
  const out: ExampleColumns[] = [];
  for (let s = 0, k = 0; s < rows; s += batch, k++) {
    const epoch = 1 + Math.floor(s / perEpoch);
    const base = pool[k % pool.length];
    out.push({ ...base, epoch, example: Int32Array.from({ length: batch }, (_, i) => (s + i) % perEpoch) });
  }
  return out;
}

async function main() {
  const rows = arg('rows', 1_000_000);
  const batch = arg('batch', 1000);
  const epochs = arg('epochs', 1);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-bench-sinks-'));
  const data = batches(rows, batch, epochs);
  const start: RunEvent = {
    type: 'run-start',
    runId: 'bench',
    runDir: path.join(dir, 'parquet'),
    spec: {},
    seed: 1,
    backend: { name: 'cpu', provider: 'none', tfjsVersion: '', tensorflowVersion: null, threads: 1 },
    startedAt: new Date().toISOString(),
    epochs,
    numClasses: 10,
    trainSize: rows / epochs,
    firstEpoch: 1,
    priorEpochs: [],
  };
  const result: Record<string, unknown> = {
    rows,
    batch,
    epochs,
    node: process.version,
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
  };
  // warm-up: load wasm, JIT
  {
    const w = new ParquetRunWriter({ writeSpec: false });
    await w.handle({ ...start, runDir: path.join(dir, 'warm') });
    for (const c of data.slice(0, 50)) await w.handle({ type: 'examples', columns: c });
    await w.handle({ type: 'run-end', status: 'completed', wallMs: 0 });
  }
  {
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const w = new ParquetRunWriter({ writeSpec: false });
    await w.handle(start);
    for (const c of data) {
      await w.handle({ type: 'examples', columns: c });
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    await w.handle({ type: 'run-end', status: 'completed', wallMs: 0 });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const files = w.result().files.examples ?? [];
    const bytes = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    result.parquet = {
      seconds: s,
      rows_per_s: rows / s,
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
      rows_per_cpu_s: rows / ((cpu.user + cpu.system) / 1e6),
      bytes,
      bytes_per_row: bytes / rows,
      rss_growth_mb: (peak - rss0) / 2 ** 20,
      target_rows_per_s: 1_000_000,
      meets_target: rows / s >= 1_000_000,
    };
  }
  {
    const subject = new Subject<RunEvent>();
    const done = firstValueFrom(subject.pipe(arrowSink()));
    const t0 = process.hrtime.bigint();
    subject.next({ ...start, runDir: path.join(dir, 'arrow') });
    for (const c of data) subject.next({ type: 'examples', columns: c });
    subject.next({ type: 'run-end', status: 'completed', wallMs: 0 });
    subject.complete();
    const r = await done;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    result.arrow = { seconds: s, rows_per_s: rows / s, bytes: fs.statSync(r.files.examples!).size };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
