import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { pipe } from 'rxjs';
import { initBackend } from '../../src/backend/select';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun, standardEpoch, type ExecuteRunOptions } from '../../src/run/execute-run';
import { stopWhen } from '../../src/run/epoch';
import { resolveRuns } from '../../src/config/spec';
import { readSafetensorsFile } from '../../src/models/safetensors';
import { parquetRunSink } from '../../src/logs/sinks';
import { SummaryWriter, readRunSummary } from '../../src/logs/summary';
import { readEpochRecords, readRunStop, renderSummaryTable } from '../../src/cli/summary-table';
import { atflow, tempRoot, tinySpec } from '../reliability/helpers';

/**
 * Issue 22, items 3 and 4: the weights a run folder keeps belong to the records it keeps.
 * - best.safetensors was written by trackBest at every new best, before and apart from the checkpoint:
 *   a run stopped after a new best and before the next checkpoint kept the lost epoch's weights as
 *   "best" while its records (which the resume continues from) name an earlier epoch.
 * - an early stop (or a stop between epochs) at an epoch that is not a multiple of checkpoint.every
 *   left LATEST at an earlier epoch (or none), so "final" was not the final weights.
 * The reference for "the weights of epoch k" is an uninterrupted run of the same config with a
 * checkpoint after every epoch (checkpoint.keep 'all'): runs on wasm are bit-identical run to run.
 */

const root = tempRoot('atflow-best-last-');
const registry = defaultRegistry();
// seed 3: test robust accuracy 0.031, 0.016, 0.125, 0.188 → best epochs 1, 1, 3, 4 (epoch 3 a new best
// after the epoch-2 checkpoint; checked below against the reference's own records)
const spec = (name: string, checkpoint: Record<string, unknown>) =>
  tinySpec(name, {
    seed: 3,
    epochs: 4,
    data: { source: 'mnist', trainSize: 64, testSize: 64, batchSize: 16, testBatchSize: 64 },
    optimizer: { lr: 0.1 },
    logging: { examples: false },
    eval: { train: false, final: { examples: 8 } },
    checkpoint,
  });

/** Tensor name → sha256 of its bytes: equal maps are byte-identical weights (and a failure prints a short diff). */
type Weights = Map<string, string>;
const weightsOf = (file: string): Weights =>
  new Map([...readSafetensorsFile(file).tensors].map(([k, t]) => [k, createHash('sha256').update(t.data).digest('hex')]));
const epochDir = (runDir: string, epoch: number) => path.join(runDir, 'checkpoints', `epoch-${String(epoch).padStart(4, '0')}`);
const latest = (runDir: string) => fs.readFileSync(path.join(runDir, 'checkpoints', 'LATEST'), 'utf8').trim();
const stateOf = (dir: string) =>
  JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as { epochs: { epoch: number; best_epoch: number }[] };

/** Every file under checkpoints/ whose name starts with "best" (wherever a version keeps them). */
function bestFiles(runDir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.startsWith('best') && e.name.endsWith('.safetensors')) out.push(path.join(d, e.name));
    }
  };
  walk(path.join(runDir, 'checkpoints'));
  return out;
}

describe('the weights a run folder keeps belong to its records', () => {
  jest.setTimeout(300_000);
  let reference = '';
  const exec = (name: string, checkpoint: Record<string, unknown>, o: Partial<ExecuteRunOptions> = {}) =>
    executeRun(resolveRuns(spec(name, checkpoint))[0], {
      outDir: path.join(root, name),
      registry,
      backend: 'wasm',
      sinks: () => [parquetRunSink(), new SummaryWriter()],
      ...o,
    });

  beforeAll(async () => {
    await initBackend('wasm');
    const r = await exec('reference', { every: 1, keep: 'all' });
    expect(r.status).toBe('completed');
    reference = r.runDir;
    // the scenario's precondition, from the reference's own records: epoch 3 is a new best, epoch 2 was not
    expect(r.epochs.map((e) => e.best_epoch)).toEqual([1, 1, 3, 4]);
  });

  it('a run stopped after a new best and before the next checkpoint keeps only best weights its checkpoint names', async () => {
    let stop = false;
    const r = await exec(
      'stopped-after-best',
      { every: 2 },
      {
        // Ctrl-C inside epoch 4: epoch 3 (a new best) is done, its checkpoint (every 2) never comes
        observe: (ev$) =>
          void ev$.subscribe((ev) => {
            if (ev.type === 'epoch-start' && ev.epoch === 4) stop = true;
          }),
        shouldStop: () => stop,
      },
    );
    expect(r.status).toBe('interrupted');
    expect(latest(r.runDir)).toBe('epoch-0002');
    const records = stateOf(epochDir(r.runDir, 2)).epochs;
    const named = records[records.length - 1].best_epoch;
    expect(named).toBe(1);
    const files = bestFiles(r.runDir);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files)
      expect([path.relative(r.runDir, f), weightsOf(f)]).toEqual([
        path.relative(r.runDir, f),
        weightsOf(path.join(epochDir(reference, named), 'model.safetensors')),
      ]);

    // resumed, it completes as the reference did, its best weights those of the reference's best epoch
    const resumed = await exec('stopped-after-best', { every: 2 }, { resume: true });
    expect(resumed.status).toBe('completed');
    const final = stateOf(epochDir(resumed.runDir, 4)).epochs;
    expect(final[final.length - 1].best_epoch).toBe(4);
    expect(weightsOf(path.join(epochDir(resumed.runDir, 4), 'best.safetensors'))).toEqual(
      weightsOf(path.join(epochDir(reference, 4), 'model.safetensors')),
    );
  });

  it.each([
    ['an early stop', 'early' as const, 'completed'],
    ['a stop between epochs', 'interrupted' as const, 'interrupted'],
  ])('%s at an epoch no checkpoint.every reaches writes that epoch as the last checkpoint', async (_label, as, status) => {
    const r = await exec(
      `stop-${as}`,
      { every: 5 },
      {
        epoch: (run) =>
          pipe(
            standardEpoch(run),
            stopWhen((s) => s.epoch === 3, as),
          ),
      },
    );
    expect(r.status).toBe(status);
    expect(latest(r.runDir)).toBe('epoch-0003');
    expect(weightsOf(path.join(epochDir(r.runDir, 3), 'model.safetensors'))).toEqual(
      weightsOf(path.join(epochDir(reference, 3), 'model.safetensors')),
    );
    expect(weightsOf(path.join(epochDir(r.runDir, 3), 'best.safetensors'))).toEqual(
      weightsOf(path.join(epochDir(reference, 3), 'model.safetensors')),
    );
    if (as === 'early') {
      expect(JSON.parse(fs.readFileSync(path.join(r.runDir, 'final_eval.json'), 'utf8')).epoch).toBe(3);
      expect(readRunSummary(r.runDir).stopped).toEqual({ epoch: 3, of: 4, reason: 'early' });
    } else {
      // and the summary says where it stopped, not "final"
      expect(readRunSummary(r.runDir)).toMatchObject({ status: 'interrupted', stopped: { epoch: 3, of: 4, reason: 'interrupted' } });
      const table = renderSummaryTable([{ name: 'r', epochs: readEpochRecords(r.runDir), stopped: readRunStop(r.runDir) }]);
      expect(table).toContain('r stopped at epoch 3 of 4');
      expect(table).not.toMatch(/^r final/m);
    }
  });

  describe('atflow eval --checkpoint best', () => {
    const evalBest = (runDir: string) =>
      atflow([
        'eval',
        runDir,
        '--checkpoint',
        'best',
        '--attacks',
        'apgd-ce',
        '--n',
        '8',
        '--apgd-steps',
        '2',
        '--backend',
        'wasm',
        '--quiet',
      ]);
    const copy = (label: string): string => {
      const dir = path.join(root, 'copies', label, path.basename(reference));
      fs.cpSync(reference, dir, { recursive: true });
      return dir;
    };

    it('with the best weights missing is an error naming the file, not the final weights labelled best', () => {
      const dir = copy('missing');
      for (const f of bestFiles(dir)) fs.rmSync(f);
      const r = evalBest(dir);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/best\.safetensors is missing: .*names epoch 4 as the best/);
    });

    it("refuses best weights that hold another epoch than the checkpoint's records name", () => {
      const dir = copy('mismatch');
      for (const f of bestFiles(dir)) fs.copyFileSync(path.join(epochDir(dir, 1), 'model.safetensors'), f);
      const r = evalBest(dir);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/holds the weights of epoch 1, but .*names epoch 4 as the best/);
    });
  });
});
