import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tensorflowAvailable } from '../../src/backend/select';
import type { EvalProgress, RunEvent } from '../../src/core/run-event';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun } from '../../src/run/execute-run';
import { parquetRunSink } from '../../src/logs/sinks';
import { resolveRuns } from '../../src/config/spec';
import { readEpochRecords, readFinalEval, renderSummaryTable } from '../../src/cli/summary-table';
import { ProgressDisplay } from '../../src/logs/progress';

/**
 * The end-of-training AutoAttack (eval.final.strong: "autoattack") as a user sees it: progress lines
 * while it runs (it used to print nothing for minutes), one evaluation when the best epoch is the final
 * one, and its numbers in the console summary table. A real one-epoch run on embedded MNIST digits.
 */
const backend = tensorflowAvailable() ? 'tensorflow' : 'wasm';
const spec = {
  name: 'final-aa',
  seed: 2,
  epochs: 1,
  data: { source: 'mnist', trainSize: 64, testSize: 16, batchSize: 32, testBatchSize: 16 },
  model: { name: 'cnn-small' },
  trainer: { name: 'pgd-at' },
  attack: { eps: 0.1, alpha: 0.05, steps: 2 },
  optimizer: { lr: 0.05 },
  logging: { complexityEvery: 0 },
  eval: { final: { strong: 'autoattack', examples: 6 } },
};

jest.setTimeout(600_000);

it('shows each AutoAttack stage starting and ending (with its own time), evaluates the one checkpoint once, and puts its numbers in the summary table', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-final-aa-'));
  try {
    const [run] = resolveRuns(spec);
    const lines: string[] = [];
    const stream = {
      write: (s: string) => lines.push(...s.split('\n').filter(Boolean)) !== 0,
      isTTY: false,
    } as unknown as NodeJS.WritableStream;
    const progress: EvalProgress[] = [];
    const events: RunEvent['type'][] = [];
    const outcome = await executeRun(run, {
      outDir: out,
      registry: defaultRegistry(),
      backend,
      sinks: () => [parquetRunSink(), new ProgressDisplay({ stream, tty: false })],
      observe: (ev$) =>
        ev$.subscribe((ev) => {
          events.push(ev.type);
          if (ev.type === 'eval-progress') progress.push(ev.progress);
        }),
    });
    expect(outcome.status).toBe('completed');
    const stages = ['apgd-ce', 'apgd-t', 'fab-t', 'square'];
    // a start and an end per stage, in order, for the final checkpoint only (best = final: epoch 1)
    expect(progress.map((p) => `${p.what} ${p.step} ${p.phase}`)).toEqual(
      stages.flatMap((s) => [`autoattack final (epoch 1) ${s} start`, `autoattack final (epoch 1) ${s} end`]),
    );
    for (const p of progress.filter((q) => q.phase === 'end')) expect(p.stepSeconds).toBeGreaterThan(0);
    // they arrive while the run is still going: before run-end
    expect(events.lastIndexOf('eval-progress')).toBeLessThan(events.indexOf('run-end'));
    // the display prints a line per event, the end lines with the stage's own time
    const shown = lines.filter((l) => l.startsWith('autoattack final (epoch 1)'));
    expect(shown.length).toBe(8);
    expect(shown[1]).toMatch(/apgd-ce \(1\/4\): \d+ points? in \d+(\.\d)?s, robust \d+\.\d%, .* elapsed, ETA/);
    // evaluated once: one folder, and best repeats final's numbers
    expect(fs.readdirSync(path.join(outcome.runDir, 'eval'))).toEqual(['final-standard-linf-eps0.1-test-n6']);
    const finalEval = readFinalEval(outcome.runDir)!;
    const { checkpoint: bestLabel, ...best } = finalEval.autoattack!.best!;
    const { checkpoint: finalLabel, ...final } = finalEval.autoattack!.final;
    expect([bestLabel, finalLabel]).toEqual(['best (epoch 1)', 'final (epoch 1)']);
    expect(best).toEqual(final);
    // the console summary carries them
    const table = renderSummaryTable([{ name: 'pgd-at', epochs: readEpochRecords(outcome.runDir), finalEval }]);
    expect(table).toMatch(/AutoAttack \(standard, linf ε = 0\.1, 6 test examples; final_eval\.json\):/);
    expect(table).toMatch(
      / {2}pgd-at best = final \(epoch 1\): clean \d+\.\d %, robust \d+\.\d % \(after apgd-ce \d+\.\d \/ apgd-t \d+\.\d \/ fab-t \d+\.\d \/ square \d+\.\d %\), \d+ s/,
    );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
