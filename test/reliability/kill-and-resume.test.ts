import * as arrow from 'apache-arrow';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readSafetensorsFile } from '../../src/models/safetensors';
import { loadRuns } from '../../src/config/spec';
import { duck, lit } from '../logs/duck';

/**
 * The crash-safety guarantee (issue 8): a run killed with SIGKILL anywhere — inside an attack, while a
 * Parquet file is being written, while a checkpoint is being written, between epochs — and resumed
 * with --resume produces the same examples / events / epochs / steps tables (Parquet and Arrow streams)
 * and final weights as a run that was never interrupted. The kill is real (the child SIGKILLs itself at the chosen point).
 */
const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'atflow.js');

function writeConfig(dir: string, model: string): string {
  const file = path.join(dir, 'kill.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: 'kill',
      seed: 5,
      epochs: 3,
      data: { source: 'mnist', trainSize: 24, testSize: 12, batchSize: 8, testBatchSize: 12 },
      labelNoise: { kind: 'symmetric', rate: 0.4 },
      model: { name: model },
      trainer: { name: 'pgd-at', te: { start: 2, end: 3, weight: 10, momentum: 0.9 } },
      attack: { eps: 0.1, alpha: 0.05, steps: 2 },
      optimizer: { lr: 0.05, weightDecay: 5e-4 },
      schedule: { name: 'multistep', milestones: [2] },
      logging: { complexityEvery: 2, arrow: true },
    }),
  );
  return file;
}

function atflow(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 240_000 });
}

const TABLES: [string, string][] = [
  ['examples', 'epoch, phase, split, example'],
  ['events', 'epoch, phase, example, event'],
  ['epochs', 'epoch'],
  ['steps', 'epoch, step'],
  ['complexity', 'epoch, measure'],
  ['labels', 'example'],
];

async function table(runDir: string, name: string, order: string): Promise<Record<string, unknown>[]> {
  const src =
    name === 'examples'
      ? `read_parquet(${lit(path.join(runDir, 'examples', '*', '*.parquet'))}, hive_partitioning = false)`
      : `read_parquet(${lit(path.join(runDir, name + '.parquet'))})`;
  const rows = await duck(`SELECT * EXCLUDE (run_id) FROM ${src} ORDER BY ${order}`);
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !['time', 'ms', 'wall_ms', 'eval_ms'].includes(k))));
}

/** An Arrow stream's rows in stream order (an uninterrupted run's order), without the wall-clock columns. */
function streamRows(runDir: string, name: string): Record<string, unknown>[] {
  const t = arrow.tableFromIPC(fs.readFileSync(path.join(runDir, 'arrow', `${name}.arrows`)));
  return t
    .toArray()
    .map((r) => Object.fromEntries(Object.entries(r.toJSON()).filter(([k]) => !['time', 'ms', 'wall_ms', 'eval_ms'].includes(k))));
}

function weights(runDir: string): Map<string, Buffer> {
  const f = readSafetensorsFile(path.join(runDir, 'checkpoints', 'epoch-0003', 'model.safetensors'));
  return new Map([...f.tensors].map(([k, t]) => [k, Buffer.from(t.data)]));
}

describe.each([
  ['wasm', 'cnn-small', ['attack@7', 'parquet-close@6', 'checkpoint-write@2', 'epoch-boundary@1']],
  ['cpu', 'mlp', ['attack@5', 'parquet-close@9', 'arrow-append@20']],
])('SIGKILL and --resume on %s', (backend, model, faults) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `atflow-kill-${backend}-`));
  const config = writeConfig(dir, model);
  const [run] = loadRuns(config);
  let reference = '';

  beforeAll(() => {
    const out = path.join(dir, 'reference');
    const r = atflow(['run', config, '--out', out, '--backend', backend, '--quiet']);
    expect(r.status).toBe(0);
    reference = path.join(out, run.runId);
  });

  it.each(faults)('killed at %s, then resumed: identical tables and weights', async (fault) => {
    const out = path.join(dir, fault.replace('@', '-'));
    const killed = atflow(['run', config, '--out', out, '--backend', backend, '--quiet'], { ATFLOW_FAULT: fault });
    expect(killed.signal).toBe('SIGKILL');
    const runDir = path.join(out, run.runId);
    expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(false);
    const resumed = atflow(['run', config, '--out', out, '--backend', backend, '--quiet', '--resume']);
    expect(resumed.stderr).not.toMatch(/Error/);
    expect(resumed.status).toBe(0);
    expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(true);
    for (const [name, order] of TABLES) expect(await table(runDir, name, order)).toEqual(await table(reference, name, order));
    // the Arrow streams too (logging.arrow): the rows of the checkpointed epochs kept, the rest re-run
    for (const [name] of TABLES) expect([name, streamRows(runDir, name)]).toEqual([name, streamRows(reference, name)]);
    expect(weights(runDir)).toEqual(weights(reference));
    // nothing half-written is left behind
    const leftovers: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else if (/\.tmp$|^\.tmp-/.test(e.name)) leftovers.push(path.join(d, e.name));
      }
    };
    walk(runDir);
    expect(leftovers).toEqual([]);
    expect(fs.existsSync(path.join(runDir, '_segments'))).toBe(false);
  });
});
