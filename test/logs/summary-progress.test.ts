import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import { firstValueFrom, from, lastValueFrom, toArray } from 'rxjs';
import type { EpochRecord } from '../../src/core/records';
import type { RunEvent } from '../../src/core/run-event';
import { summarySink, writeMultiRunSummary, readRunSummary, pickBest } from '../../src/logs/summary';
import { progressSink } from '../../src/logs/progress';
import { readRunMeta } from '../../src/logs/run-meta';
import { syntheticRun } from './synthetic-run';
import { writeRun } from './run-sink';

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-sum-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('summary.json: best (by the run rule) and final accuracies, robust gap, meta, paths', async () => {
  const runDir = path.join(dir, 'a');
  const events = syntheticRun({ runDir, runId: 'a', n: 40, epochs: 5, batch: 16, trainer: 'trades' });
  await writeRun(events); // tables first, so the summary lists them
  const s = await firstValueFrom(from(events).pipe(summarySink()));
  // synthetic test robust acc: 0.4, 0.5, 0.6, 0.55, 0.5 → best epoch 3, final epoch 5
  expect(s.best).toEqual({
    epoch: 3,
    test_clean_acc: 0.5 + 0.05 * 3,
    test_robust_acc: 0.3 + 0.1 * 3,
    train_clean_acc: 0.5 + 0.1 * 3,
    train_robust_acc: 0.3 + 0.12 * 3,
  });
  expect(s.final!.epoch).toBe(5);
  expect(s.robust_gap).toBeCloseTo(0.6 - (0.3 + 0.3 - 0.1), 12);
  expect(s).toMatchObject({
    run_id: 'a',
    status: 'completed',
    trainer: 'trades',
    te: false,
    label_noise: { kind: 'sym', rate: 0.2 },
    wall_ms: 4321,
    seed: 7,
    best_rule: 'test_robust_acc',
  });
  expect(s.attack).toEqual({ norm: 'linf', eps: 8 / 255, alpha: 2 / 255, steps: 10 });
  expect(s.backend!.name).toBe('cpu');
  expect(s.paths).toMatchObject({
    labels: 'labels.parquet',
    epochs: 'epochs.parquet',
    steps: 'steps.parquet',
    events: 'events.parquet',
    complexity: 'complexity.parquet',
    spec: 'spec.json',
    summary: 'summary.json',
  });
  expect(readRunSummary(runDir)).toEqual(JSON.parse(JSON.stringify(s)));
  const multi = writeMultiRunSummary(path.join(dir, 'summary.json'), [s, { ...s, run_id: 'b' }]);
  expect(JSON.parse(fs.readFileSync(multi, 'utf8')).runs.map((r: { run_id: string }) => r.run_id)).toEqual(['a', 'b']);
});

test('pickBest: highest test robust accuracy, ties by clean accuracy', () => {
  const r = (epoch: number, rob: number, clean: number) => ({ epoch, test_robust_acc: rob, test_clean_acc: clean }) as EpochRecord;
  expect(pickBest([r(1, 0.4, 0.8), r(2, 0.5, 0.7), r(3, 0.5, 0.75), r(4, 0.45, 0.9)])!.epoch).toBe(3);
});

test('readRunMeta reads the RunSpec fields (trainer.name, trainer.te, labelNoise, attack)', () => {
  const m = readRunMeta({
    trainer: { name: 'pgd-at', te: { start: 90 } },
    labelNoise: { kind: 'symmetric', rate: 0.4 },
    attack: { name: 'pgd', norm: 'l2', eps: 0.5, alpha: 0.1, steps: 7 },
  });
  expect(m).toEqual({
    trainer: 'pgd-at',
    te: true,
    label_noise: { kind: 'symmetric', rate: 0.4 },
    attack: { norm: 'l2', eps: 0.5, alpha: 0.1, steps: 7 },
  });
  expect(readRunMeta(undefined).trainer).toBe('unknown');
});

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  columns = 200;
  override _write(chunk: Buffer, _enc: string, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

const progressRun = (): RunEvent[] => syntheticRun({ runDir: path.join(dir, 'p'), runId: 'p', n: 40, epochs: 3, batch: 16 });

test('progress: plain lines when not a TTY (one per epoch with loss and accuracies)', async () => {
  const out = new Capture(false);
  await lastValueFrom(from(progressRun()).pipe(progressSink({ stream: out }), toArray()));
  const lines = out.text.trim().split('\n');
  expect(lines[0]).toBe('run p: 3 epochs from epoch 1, 40 training examples, backend cpu');
  expect(lines.filter((l) => l.startsWith('epoch '))).toEqual([
    'epoch 1/3 | loss 2.0000 | train clean 60.0% robust 42.0% | test clean 55.0% robust 40.0% | best epoch 1 | 1.0s',
    'epoch 2/3 | loss 1.0000 | train clean 70.0% robust 54.0% | test clean 60.0% robust 50.0% | best epoch 2 | 1.0s',
    'epoch 3/3 | loss 0.6667 | train clean 80.0% robust 66.0% | test clean 65.0% robust 60.0% | best epoch 3 | 1.0s',
  ]);
  expect(lines[lines.length - 1]).toBe('run p completed in 4.3s');
  expect(out.text).not.toContain('\u001b['); // no cursor control codes in logs
});

test('progress: bars with ETA on a TTY; silent when quiet', async () => {
  const tty = new Capture(true);
  await lastValueFrom(from(progressRun()).pipe(progressSink({ stream: tty as unknown as NodeJS.WriteStream }), toArray()));
  expect(tty.text).toMatch(/epoch 1\/3 \[[█░]+\] 3\/3 \| ETA \S+ \| loss \d\.\d{4} \| train clean \d+\.\d% robust \d+\.\d%/);
  expect(tty.text).toMatch(/epoch 3\/3 \[/);
  expect(tty.text).toContain('test clean 65.0% robust 60.0%');
  const quiet = new Capture(true);
  await lastValueFrom(from(progressRun()).pipe(progressSink({ stream: quiet, quiet: true }), toArray()));
  expect(quiet.text).toBe('');
});
