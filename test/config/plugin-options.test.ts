import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';
import { runConfig } from '../../src/cli/run-config';
import { atflow, tableRows, tempRoot, tinySpec, writeJson } from '../reliability/helpers';

/**
 * Issue 23, "One lookup path": a plugin's attack and trainer take options of their own from the config
 * (each registered with its zod schema), in the main thread, in data-parallel workers (ATFLOW_WORKERS=2)
 * and in variant processes (--workers 2); a misspelt option of the plugin's is refused naming the field,
 * before anything is written. On the old code the spec schema was .strict(): `attack.shrink` and
 * `trainer.lossScale` were unknown fields whatever the plugin registered.
 *
 * The plugin: attack 'shrunk-pgd' is PGD at ε·shrink; trainer 'scaled-at' is PGD-AT with its loss times
 * lossScale. So a run of scaled-at (lossScale 3) with shrunk-pgd (ε 0.2, shrink 0.5) takes, at its first
 * step, exactly 3× the loss of plain PGD-AT at ε 0.1 on the same weights, data and start draws.
 */
const root = tempRoot('atflow-plugin-options-');
const log = path.join(root, 'built.log');
const PLUGIN = `
const fs = require('fs');
const { z } = require(${JSON.stringify(require.resolve('zod'))});
const { isMainThread } = require('worker_threads');
const LOG = ${JSON.stringify(log)};
const note = (what, value) => fs.appendFileSync(LOG, [what, isMainThread ? 'main' : 'worker', process.pid, value].join(' ') + '\\n');
const settings = {
  norm: z.enum(['linf', 'l2']).optional(), eps: z.number().optional(), alpha: z.number().optional(),
  steps: z.number().optional(), restarts: z.number().optional(), randomStart: z.string().optional(),
};
exports.register = function (registry) {
  registry.register('attack', 'shrunk-pgd', (o, r) => {
    note('attack', 'shrink=' + o.shrink);
    const pgd = r.create('attack', 'pgd', {});
    return (model, x, y, seed, options) => pgd(model, x, y, seed, { ...options, eps: options.eps * o.shrink });
  }, { options: z.object({ ...settings, shrink: z.number().gt(0).max(1) }).strict() });
  registry.register('trainer', 'scaled-at', (o, r) => {
    note('trainer', 'lossScale=' + o.lossScale);
    const inner = r.create('trainer', 'pgd-at', o);
    return { ...inner, name: 'scaled-at', loss: (input) => { const out = inner.loss(input); return { ...out, loss: out.loss.mul(o.lossScale) }; } };
  }, { options: z.object({ lossScale: z.number().positive(), te: z.object({}).strict().optional() }).strict() });
};
`;
writeJson(path.join(root, 'own-options.js'), PLUGIN);
const built = () =>
  fs.existsSync(log)
    ? fs
        .readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
    : [];
/** One epoch, two steps. */
const spec = (over: Record<string, unknown>) =>
  tinySpec('own', { epochs: 1, labelNoise: { kind: 'none' }, eval: { every: 1, final: { examples: 8 } }, ...over });
const pluginSpec = (over: Record<string, unknown> = {}) =>
  spec({
    plugins: ['./own-options.js'],
    trainer: { name: 'scaled-at', lossScale: 3 },
    attack: { name: 'shrunk-pgd', eps: 0.2, alpha: 0.05, steps: 1, shrink: 0.5 },
    ...over,
  });
const firstLoss = (runsDir: string) => {
  const dir = fs.readdirSync(runsDir).find((d) => fs.existsSync(path.join(runsDir, d, '_SUCCESS')))!;
  return tableRows(path.join(runsDir, dir, 'steps.parquet')).find((r) => r.step === 0)!.loss as number;
};
const quiet = { quiet: true, backend: 'cpu' as const, log: () => undefined };

async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(before))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

describe("a plugin's attack and trainer take options of their own", () => {
  jest.setTimeout(300_000);
  beforeAll(async () => {
    await initBackend('cpu');
  });
  beforeEach(() => fs.rmSync(log, { force: true }));

  it('ATFLOW_WORKERS=2: the options reach the main thread and both workers, and the run trains with them', async () => {
    const out = path.join(root, 'dp-out');
    const refOut = path.join(root, 'dp-ref');
    await withEnv({ ATFLOW_WORKERS: '2' }, async () => {
      expect(await runConfig(writeJson(path.join(root, 'dp.json'), pluginSpec()), { outDir: out, ...quiet })).toBe(0);
    });
    expect(
      built()
        .filter(([what]) => what === 'trainer')
        .map(([, where]) => where)
        .sort(),
    ).toEqual(['main', 'worker', 'worker']);
    expect(new Set(built().map(([what, , , v]) => `${what} ${v ?? ''}`.trim()))).toEqual(
      new Set(['trainer lossScale=3', 'attack shrink=0.5']),
    );
    expect(
      built()
        .filter(([what]) => what === 'attack')
        .map(([, where]) => where),
    ).toEqual(expect.arrayContaining(['main', 'worker', 'worker']));
    // PGD-AT at ε = 0.1, single thread: the plugin's step is lossScale × this one
    expect(
      await runConfig(writeJson(path.join(root, 'dp-ref.json'), spec({ attack: { eps: 0.1, alpha: 0.05, steps: 1 } })), {
        outDir: refOut,
        ...quiet,
      }),
    ).toBe(0);
    expect(firstLoss(out) / firstLoss(refOut)).toBeCloseTo(3, 5);
  });

  it("--workers 2: each variant process loads the config's plugin and builds with the options", () => {
    const config = writeJson(path.join(root, 'procs.json'), pluginSpec({ variants: { a: {}, b: { trainer: { lossScale: 2 } } } }));
    const r = atflow(['run', config, '--workers', '2', '--out', path.join(root, 'procs-out'), '--backend', 'cpu', '--quiet'], {
      env: { ATFLOW_WORKERS: '1' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const trainers = built().filter(([what]) => what === 'trainer');
    expect(new Set(trainers.map(([, , pid]) => pid)).size).toBe(2);
    expect(trainers.map(([, , , v]) => v).sort()).toEqual(['lossScale=2', 'lossScale=3']);
  });

  it("a misspelt option of the plugin's is refused naming the field, and nothing is written", () => {
    for (const [over, error] of [
      [
        { attack: { name: 'shrunk-pgd', eps: 0.2, shrnk: 0.5 } },
        /attack\.shrnk: unknown field \(did you mean 'attack\.shrink'\?\); allowed: name, norm, eps, alpha, steps, restarts, randomStart, shrink, objective/,
      ],
      [{ trainer: { name: 'scaled-at', lossScal: 3 } }, /trainer\.lossScal: unknown field \(did you mean 'trainer\.lossScale'\?\)/],
      [{ attack: { name: 'shrunk-pgd', eps: 0.2, shrink: 2 } }, /attack\.shrink: Number must be less than or equal to 1 \(got 2\)/],
    ] as const) {
      const out = path.join(root, 'bad-out');
      const r = atflow(['run', writeJson(path.join(root, 'bad.json'), pluginSpec(over)), '--out', out, '--backend', 'cpu']);
      expect(r.stderr).toMatch(error);
      expect(r.stderr).toMatch(/bad\.json: invalid config/);
      expect(r.status).toBe(2);
      expect(fs.existsSync(out)).toBe(false);
    }
  });
});
