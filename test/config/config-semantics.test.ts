import * as fs from 'fs';
import * as path from 'path';
import { loadRuns, specWarnings, validateSpec } from '../../src/config/spec';
import { canonicalJson } from '../../src/config/canonical-json';
import { dataParallelWorkers } from '../../src/run/data-parallel/choose-workers';
import { runSweep } from '../../src/sweep/run-sweep';
import { atflow, ROOT, tempRoot, tinySpec, writeJson } from '../reliability/helpers';

/**
 * Config semantics a user meets on the command line (issues 22, 24, 25), each checked as the user meets
 * it: through the installed bin, or the function the CLI calls. Every case failed on the code before.
 */
const root = tempRoot('atflow-config-semantics-');
const QUICKSTART = path.join(ROOT, 'config', 'quickstart.json');

function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('--set', () => {
  it("is the last word: it wins over the config's variants (issue 22, item 6)", () => {
    // the quickstart's variants set trainer.name to 'trades' and 'pgd-at': --set decides for both
    const runs = loadRuns(QUICKSTART, ['trainer={"name": "pgd-at"}', 'epochs=3']);
    expect(runs.map((r) => [r.variant, r.spec.trainer.name, r.spec.trainer.beta, r.spec.epochs])).toEqual([
      ['trades', 'pgd-at', undefined, 3],
      ['pgd-at', 'pgd-at', undefined, 3],
    ]);
    // a key below one a variant sets: the variant keeps its other keys, --set decides the one it names
    const named = loadRuns(QUICKSTART, ['trainer.name=mart']);
    expect(named.map((r) => [r.variant, r.spec.trainer.name, r.spec.trainer.beta])).toEqual([
      ['trades', 'mart', 6],
      ['pgd-at', 'mart', undefined],
    ]);
    // and the CLI shows it: a dry run prints the resolved specs
    const r = atflow(['run', QUICKSTART, '--dry-run', '--set', 'trainer={"name": "pgd-at"}', '--out', path.join(root, 'never')]);
    expect(r.status).toBe(0);
    expect(r.stdout.match(/"name": "pgd-at"/g)).toHaveLength(2);
    expect(r.stdout).not.toMatch(/"name": "trades"/);
  });

  it('takes a fraction wherever it sets a number (issue 25), as eval --eps does', () => {
    const [run] = loadRuns(writeJson(path.join(root, 'frac.json'), tinySpec('frac')), [
      'attack.eps=8/255',
      'attack.alpha=2/255',
      'optimizer.lr=1e-2',
    ]);
    expect(run.spec.attack.eps).toBe(8 / 255);
    expect(run.spec.attack.alpha).toBe(2 / 255);
    expect(run.spec.optimizer.lr).toBe(0.01);
    // a string field keeps a string; JSON quotes make anything a string
    const [named] = loadRuns(writeJson(path.join(root, 'frac2.json'), tinySpec('frac')), ['description=1/2 of it', 'name="x-1"']);
    expect([named.spec.description, named.spec.name]).toEqual(['1/2 of it', 'x-1']);
  });

  it('refuses paths that reach Object.prototype (__proto__, constructor.prototype), and pollutes nothing (issue 23)', () => {
    const file = writeJson(path.join(root, 'proto.json'), tinySpec('proto'));
    try {
      expect(errorOf(() => loadRuns(file, ['__proto__.polluted=1'])).message).toMatch(
        /--set __proto__\.polluted: bad path '__proto__\.polluted'.*offending segment '__proto__'/,
      );
      expect(errorOf(() => loadRuns(file, ['constructor.prototype.polluted=1'])).message).toMatch(
        /bad path 'constructor\.prototype\.polluted'.*offending segment 'constructor'/,
      );
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted;
    }
    const r = atflow(['run', file, '--set', '__proto__.x=1', '--out', path.join(root, 'proto-out')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/offending segment '__proto__'/);
  });

  it('atflow sweep --set overrides the base config without a new file; a path an axis sets is refused (issue 25)', async () => {
    const base = writeJson(path.join(root, 'sweep', 'base.json'), tinySpec('sw'));
    const sweep = writeJson(path.join(root, 'sweep', 'sw.json'), {
      base: './base.json',
      axes: { seed: [1, 2] },
      out: path.join(root, 'sweep-out'),
    });
    void base;
    const result = await runSweep(sweep, { dryRun: true, sets: ['epochs=3', 'attack.eps=8/255'], onStatus: () => undefined });
    const configs = result.materialised.manifest.runs.map((r) => JSON.parse(fs.readFileSync(r.configPath, 'utf8')));
    expect(configs.map((c) => [c.seed, c.epochs, c.attack.eps])).toEqual([
      [1, 3, 8 / 255],
      [2, 3, 8 / 255],
    ]);
    await expect(runSweep(sweep, { dryRun: true, sets: ['seed=5'], onStatus: () => undefined })).rejects.toThrow(
      /--set seed: the sweep's axis 'seed' sets it too/,
    );
    const cli = atflow(['sweep', sweep, '--dry-run', '--set', 'epochs=4']);
    expect(cli.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(result.materialised.manifest.runs[0].configPath, 'utf8')).epochs).toBe(4);
  });
});

describe('atflow run --dry-run (issue 25)', () => {
  jest.setTimeout(240_000);
  it('prints each resolved run, its id and folder, and whether it would start, be skipped or resume; it writes nothing', () => {
    const config = writeJson(path.join(root, 'dry.json'), tinySpec('dry', { epochs: 1, variants: { a: {}, b: { seed: 8 } } }));
    const out = path.join(root, 'dry-out');
    const first = atflow(['run', config, '--dry-run', '--out', out]);
    expect(first.status).toBe(0);
    const ids = loadRuns(config).map((r) => r.runId);
    expect(first.stdout).toContain(`a  ${ids[0]}  ${path.join(out, ids[0])}  would start`);
    expect(first.stdout).toContain(`b  ${ids[1]}  ${path.join(out, ids[1])}  would start`);
    expect(first.stdout).toMatch(/"seed": 8/);
    expect(fs.existsSync(out)).toBe(false);
    // run variant a; copy it as an unfinished run of b's id is not possible (ids differ): make a's copy unfinished instead
    expect(atflow(['run', config, '--only', 'a', '--out', out, '--backend', 'cpu', '--quiet']).status).toBe(0);
    const after = atflow(['run', config, '--dry-run', '--out', out]);
    expect(after.stdout).toContain(`a  ${ids[0]}  ${path.join(out, ids[0])}  finished: would be skipped`);
    expect(after.stdout).toContain(`b  ${ids[1]}  ${path.join(out, ids[1])}  would start`);
    fs.rmSync(path.join(out, ids[0], '_SUCCESS'));
    expect(atflow(['run', config, '--dry-run', '--out', out]).stdout).toContain(
      'unfinished: would be refused without --resume (it would resume from its checkpoint of epoch 1 of 1)',
    );
    expect(atflow(['run', config, '--dry-run', '--resume', '--out', out]).stdout).toContain(
      'unfinished: would resume from its checkpoint of epoch 1 of 1',
    );
    expect(fs.existsSync(path.join(out, ids[1]))).toBe(false);
  });
});

describe('plugins', () => {
  jest.setTimeout(300_000);
  const log = path.join(root, 'plugin-ran.log');
  const plugin = writeJson(
    path.join(root, 'doubled-at.js'),
    `require('fs').appendFileSync(${JSON.stringify(log)}, 'loaded\\n');
exports.register = function (registry) {
  registry.register('trainer', 'doubled-at', (options, r) => {
    const inner = r.create('trainer', 'pgd-at', options);
    return { ...inner, name: 'doubled-at', loss: (input) => { const o = inner.loss(input); return { ...o, loss: o.loss.mul(2) }; } };
  });
};
`,
  );

  it('a run records the plugins it used in spec.json; eval and probe load them from the run (issue 25)', () => {
    const config = writeJson(path.join(root, 'plug.json'), tinySpec('plug', { epochs: 1, trainer: { name: 'doubled-at' } }));
    const out = path.join(root, 'plug-out');
    const r = atflow(['run', config, '--plugin', plugin, '--out', out, '--backend', 'cpu']);
    expect({ status: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ status: 0, stderr: '' });
    // which module is loaded is said before its code runs
    expect(r.stderr).toContain(`atflow: loading plugin ${plugin}#register`);
    const runDir = path.join(
      out,
      fs.readdirSync(out).find((d) => fs.existsSync(path.join(out, d, '_SUCCESS')))!,
    );
    const specFile = path.join(runDir, 'spec.json');
    const stored = JSON.parse(fs.readFileSync(specFile, 'utf8'));
    expect(stored.spec.meta.plugins).toEqual([{ module: plugin, export: 'register' }]);
    // no --plugin: the run's own
    const probe = atflow([
      'probe',
      'gradient',
      runDir,
      '--epoch',
      '1',
      '--batch-size',
      '4',
      '--alphas',
      '0.01',
      '--backend',
      'cpu',
      '--json',
    ]);
    expect({ status: probe.status, stderr: probe.status === 0 ? '' : probe.stderr }).toEqual({ status: 0, stderr: '' });
    const evaluated = atflow([
      'eval',
      runDir,
      '--checkpoint',
      'final',
      '--attacks',
      'apgd-ce',
      '--apgd-steps',
      '2',
      '--n',
      '8',
      '--backend',
      'cpu',
      '--quiet',
    ]);
    expect({ status: evaluated.status, stderr: evaluated.status === 0 ? '' : evaluated.stderr }).toEqual({ status: 0, stderr: '' });
    // a run folder from before runs recorded them: the error says how to give the plugin
    delete stored.spec.meta.plugins;
    fs.writeFileSync(specFile, JSON.stringify(stored));
    const old = atflow([
      'eval',
      runDir,
      '--checkpoint',
      'final',
      '--attacks',
      'apgd-ce',
      '--apgd-steps',
      '2',
      '--n',
      '8',
      '--backend',
      'cpu',
      '--quiet',
    ]);
    expect(old.status).toBe(2);
    expect(old.stderr).toMatch(
      /trainer\.name: unknown trainer 'doubled-at'; registered trainers: .*; if the run used a plugin, load it with --plugin <module>\[#export\]/,
    );
    expect(
      atflow([
        'eval',
        runDir,
        '--plugin',
        plugin,
        '--checkpoint',
        'final',
        '--attacks',
        'apgd-ce',
        '--apgd-steps',
        '2',
        '--n',
        '8',
        '--backend',
        'cpu',
        '--quiet',
        '--name',
        'again',
      ]).status,
    ).toBe(0);
  });

  it('a Node built-in named as a plugin is a clear error, not a stack trace (issue 24)', () => {
    const config = writeJson(path.join(root, 'builtin.json'), tinySpec('builtin', { plugins: ['child_process#execSync'] }));
    const r = atflow(['run', config, '--out', path.join(root, 'builtin-out')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^atflow: plugin 'child_process#execSync': 'child_process' is a Node built-in module, not a plugin; a plugin is a CommonJS file or package that exports \(registry\) => void/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(path.join(root, 'builtin-out'))).toBe(false);
  });

  it('a config that does not validate loads none of its plugins', () => {
    fs.rmSync(log, { force: true });
    const config = writeJson(
      path.join(root, 'unloaded.json'),
      tinySpec('unloaded', { plugins: ['./doubled-at.js'], trainer: { name: 'doubled-at' }, epochs: 0 }),
    );
    const r = atflow(['run', config, '--out', path.join(root, 'unloaded-out')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/epochs: Number must be greater than or equal to 1/);
    expect(fs.existsSync(log)).toBe(false);
  });
});

describe('bad values that passed (issue 24)', () => {
  const out = path.join(root, 'bad-out');
  const runText = (name: string, text: string, extra: string[] = []) =>
    atflow(['run', writeJson(path.join(root, name), text), '--out', out, ...extra]);

  it('1e999 (Infinity) is refused wherever a number is, naming the config and the field, and leaves no trace in --out', () => {
    const base = JSON.stringify(tinySpec('inf'));
    for (const [field, text] of [
      ['attack.eps', base.replace('"eps":0.1', '"eps":1e999')],
      ['optimizer.lr', base.replace('"lr":0.05', '"lr":1e999')],
      ['epochs', base.replace('"epochs":2', '"epochs":1e999')],
      ['eval.attack.eps', base.replace('"eval":{', '"eval":{"attack":{"eps":1e999},')],
    ]) {
      const r = runText('inf.json', text);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('inf.json: invalid config');
      expect(r.stderr).toContain(`${field}: expected a finite number, got Infinity`);
      expect(fs.existsSync(out)).toBe(false);
    }
    const viaSet = runText('inf2.json', base, ['--set', 'trainer={"name": "trades", "beta": 1e999}']);
    expect(viaSet.stderr).toContain('trainer.beta: expected a finite number, got Infinity');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a seed above 2^53 − 1 is refused (JSON would round it)', () => {
    const r = runText('seed.json', JSON.stringify(tinySpec('seed')).replace('"seed":7', '"seed":9007199254740993'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/seed: must be at most 2\^53 − 1 = 9007199254740991/);
  });

  it("a label-noise or corruption rate with kind 'none' is warned about", () => {
    const spec = validateSpec(tinySpec('rate', { labelNoise: { kind: 'none', rate: 0.4 }, inputCorruption: { rate: 0.1 } }));
    expect(specWarnings(spec)).toEqual([
      "labelNoise.rate is 0.4 but labelNoise.kind is 'none', so nothing is changed: set labelNoise.kind (symmetric, symmetric-exclusive, pair) or remove the rate",
      "inputCorruption.rate is 0.1 but inputCorruption.kind is 'none', so nothing is changed: set inputCorruption.kind (shuffled-pixels, random-pixels, gaussian) or remove the rate",
    ]);
    expect(specWarnings(validateSpec(tinySpec('rate')))).toEqual([]);
  });

  it('ATFLOW_WORKERS above the cores is warned about', () => {
    const choice = dataParallelWorkers('wasm', { ATFLOW_WORKERS: '64' }, 2);
    expect(choice.workers).toBe(64);
    expect((choice as { warning?: string }).warning).toMatch(
      /^ATFLOW_WORKERS=64 on 2 core\(s\): 64 data-parallel workers share 2 core\(s\), which is slower than 2.*set ATFLOW_WORKERS=2/,
    );
    expect((dataParallelWorkers('wasm', { ATFLOW_WORKERS: '2' }, 2) as { warning?: string }).warning).toBeUndefined();
  });

  it('a config with a UTF-8 byte order mark reads as JSON', () => {
    const file = writeJson(path.join(root, 'bom.json'), '\ufeff' + JSON.stringify(tinySpec('bom')));
    expect(loadRuns(file)[0].spec.name).toBe('bom');
  });

  it("data.augment 'flip' lists the allowed values", () => {
    const r = runText('flip.json', JSON.stringify(tinySpec('flip', { data: { source: 'mnist', augment: 'flip' } })));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/data\.augment: unknown augmentation 'flip'.*; registered augmentations: crop-flip, default, none/);
  });
});

describe('one canonical JSON (issue 23)', () => {
  it('leaves out undefined keys, as JSON does: {a: 1, b: undefined} is {a: 1}', () => {
    expect(canonicalJson({ b: undefined, a: 1, c: { d: undefined, e: [1, undefined] } })).toBe('{"a":1,"c":{"e":[1,null]}}');
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
    expect(JSON.parse(canonicalJson({ a: 1, b: undefined }))).toEqual({ a: 1 });
  });
});

describe('one owner per helper (issue 23)', () => {
  const files = (dir: string): string[] =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
  const src = files(path.join(ROOT, 'src')).map((f) => ({ f: path.relative(ROOT, f), text: fs.readFileSync(f, 'utf8') }));
  const definitions = (re: RegExp) => src.filter(({ text }) => re.test(text)).map(({ f }) => f);

  it('isPlainObject, canonicalJson and the dotted-path setter are each defined once', () => {
    expect(definitions(/function isPlainObject\b|const isObj = \(v: unknown\)/)).toEqual(['src/config/dotted-path.ts']);
    expect(definitions(/function canonicalJson\b/)).toEqual(['src/config/canonical-json.ts']);
    expect(definitions(/export function (setPath|setDottedPath)\b/)).toEqual(['src/config/dotted-path.ts']);
  });

  it("the 'unknown name' error takes its field where it is made: no code catches it to prefix the field", () => {
    expect(definitions(/new AtflowError\(e\.code, `\$\{[^}]+\}: \$\{e\.message\}`/)).toEqual([]);
  });
});
