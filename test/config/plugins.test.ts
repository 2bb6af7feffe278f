import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';
import { DataParallelPool } from '../../src/run/data-parallel';
import { createModel } from '../../src/models';
import { defaultRegistry } from '../../src/run/default-registry';
import { runConfig } from '../../src/cli/run-config';
import { atflow, tableRows, tempRoot, tinySpec, writeJson } from '../reliability/helpers';

/**
 * Issue 15: a user's own trainer must not silently disappear in data-parallel workers (ATFLOW_WORKERS > 1)
 * or in --workers child processes. A real plugin module: a CommonJS file that registers 'doubled-at'
 * (PGD-AT with the loss ×2, so every step's loss is exactly twice PGD-AT's on the same weights) and
 * logs which thread and process built it.
 */
const root = tempRoot('atflow-plugins-');
const log = path.join(root, 'built-by.log');
// the log's path is written into the module: worker threads do not see jest's process.env
const PLUGIN = `
const fs = require('fs');
const LOG = ${JSON.stringify(log)};
const { isMainThread } = require('worker_threads');
exports.register = function (registry) {
  registry.register('trainer', 'doubled-at', (options, r) => {
    fs.appendFileSync(LOG, (isMainThread ? 'main' : 'worker') + ' ' + process.pid + '\\n');
    const inner = r.create('trainer', 'pgd-at', options);
    return { ...inner, name: 'doubled-at', loss: (input) => { const o = inner.loss(input); return { ...o, loss: o.loss.mul(2) }; } };
  });
};
`;

const plugin = writeJson(path.join(root, 'doubled-at.js'), PLUGIN);
const builders = () =>
  fs.existsSync(log)
    ? fs
        .readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
    : [];
/** One epoch, two steps; the first step's loss depends only on the init, the data and the trainer. */
const spec = (over: Record<string, unknown>) => tinySpec('plug', { epochs: 1, eval: { every: 1, final: { examples: 8 } }, ...over });
const firstLoss = (runsDir: string) => {
  const dir = fs.readdirSync(runsDir).find((d) => fs.existsSync(path.join(runsDir, d, '_SUCCESS')))!;
  return tableRows(path.join(runsDir, dir, 'steps.parquet')).find((r) => r.step === 0)!.loss as number;
};

function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return fn().finally(() => {
    for (const [k, v] of Object.entries(before))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });
}

describe('plugins reach data-parallel workers and variant processes', () => {
  jest.setTimeout(240_000);
  beforeAll(async () => {
    await initBackend('cpu');
  });
  beforeEach(() => fs.rmSync(log, { force: true }));

  it("ATFLOW_WORKERS=2: a config's plugin trainer is rebuilt in both workers from its module, and trains", async () => {
    const config = writeJson(path.join(root, 'dp.json'), spec({ trainer: { name: 'doubled-at' }, plugins: ['./doubled-at.js'] }));
    const reference = writeJson(path.join(root, 'dp-ref.json'), spec({}));
    const out = path.join(root, 'dp-out');
    const refOut = path.join(root, 'dp-ref-out');
    const quiet = { quiet: true, backend: 'cpu' as const, log: () => undefined };
    await withEnv({ ATFLOW_WORKERS: '2' }, async () => {
      expect(await runConfig(config, { outDir: out, ...quiet })).toBe(0);
    });
    // PGD-AT's first step, single-thread (the MLP has no BatchNorm: two shares give the same mean loss up to rounding)
    expect(await runConfig(reference, { outDir: refOut, ...quiet })).toBe(0);
    // the main thread's trainer and one per worker thread, all from the module
    expect(
      builders()
        .map(([where]) => where)
        .sort(),
    ).toEqual(['main', 'worker', 'worker']);
    // the workers trained with it: twice PGD-AT's loss on the same weights and data
    expect(firstLoss(out) / firstLoss(refOut)).toBeCloseTo(2, 5);
  });

  it('--workers 2: the CLI passes --plugin on to the variant processes; without it a child refuses the name', () => {
    const config = writeJson(path.join(root, 'procs.json'), spec({ trainer: { name: 'doubled-at' }, variants: { a: {}, b: { seed: 8 } } }));
    const ok = atflow(
      [
        'run',
        config,
        '--workers',
        '2',
        '--plugin',
        `${plugin}#register`,
        '--out',
        path.join(root, 'procs-out'),
        '--backend',
        'cpu',
        '--quiet',
      ],
      { env: { ATFLOW_WORKERS: '1' } },
    );
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const pids = new Set(builders().map(([, pid]) => pid));
    expect(pids.size).toBe(2); // two child processes built it
    const missing = atflow(['run', config, '--workers', '2', '--out', path.join(root, 'procs-missing'), '--backend', 'cpu'], {
      env: { ATFLOW_WORKERS: '1' },
    });
    expect(missing.status).not.toBe(0);
    // each child names the trainer it cannot find, with what is registered
    expect(missing.stderr).toMatch(/\[a\] .*unknown trainer 'doubled-at'; registered trainers: mart, pgd-at, standard, trades/);
    expect(missing.stderr).toMatch(/runs failed: .*a \(exit 2\)/);
  });

  it('refuses what workers cannot rebuild, naming it: a trainer registered in code, and an unknown name in a worker', async () => {
    const registry = defaultRegistry();
    registry.register('trainer', 'code-at', (o, r) => r.create('trainer', 'pgd-at', o));
    const config = writeJson(path.join(root, 'code.json'), spec({ trainer: { name: 'code-at' }, variants: { a: {}, b: { seed: 8 } } }));
    const quiet = { quiet: true, backend: 'cpu' as const, log: () => undefined, registry };
    await withEnv({ ATFLOW_WORKERS: '2' }, async () => {
      await expect(runConfig(config, { outDir: path.join(root, 'code-dp'), ...quiet, only: 'a' })).rejects.toThrow(
        /ATFLOW_WORKERS=2: trainer 'code-at' was registered in code \(registry\.register\), which worker threads cannot repeat; .*registry\.use\(modulePath, exportName\).*ATFLOW_WORKERS=1/,
      );
    });
    await expect(runConfig(config, { outDir: path.join(root, 'code-procs'), ...quiet, processes: 2 })).rejects.toThrow(
      /--workers 2: trainer 'code-at' was registered in code/,
    );
    // a pool without the run's recipe knows only the built-ins: the plugin's name is refused, not swapped
    const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 1 });
    await expect(DataParallelPool.create({ workers: 1, model, trainer: 'doubled-at', backend: 'cpu' })).rejects.toThrow(
      /data-parallel worker 0: unknown trainer 'doubled-at'/,
    );
    model.dispose();
  });

  it("registry.use loads a module's export and records it; a missing export is a clear error", () => {
    const registry = defaultRegistry().use(plugin);
    expect(registry.has('trainer', 'doubled-at')).toBe(true);
    expect(registry.originOf('trainer', 'doubled-at')).toBe('plugin');
    expect(registry.originOf('trainer', 'pgd-at')).toBe('builtin');
    expect(registry.plugins).toEqual([{ module: plugin, export: 'register' }]);
    expect(() => defaultRegistry().use(plugin, 'setup')).toThrow(
      /plugin .*doubled-at\.js: no exported function 'setup' \(it exports 'register'\)/,
    );
  });
});
