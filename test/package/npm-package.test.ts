/**
 * atflow as npm users get it, outside its checkout: `npm pack`, the tarball installed into a fresh project
 * (offline, from the npm cache that `npm ci` filled), then the CLI through every way it reaches a PATH
 * (node_modules/.bin, `npx atflow`, the global symlink `npm link` makes), and the library from a consumer
 * TypeScript file compiled with `strict` and no experimentalDecorators, run with plain node.
 * The tarball is packed with --ignore-scripts: jest's global setup has just rebuilt dist/ if it was stale,
 * and `prepare` would only build it a second time.
 */
import { spawnSync, type SpawnSyncReturns } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { listModels } from '../../src/models';

const ROOT = path.join(__dirname, '..', '..');
const OWN = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const LOCK = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));

let tmp: string;
let app: string;
let globalPrefix: string;
let packedFiles: string[];

/**
 * Under `npm test` the environment carries the outer npm's settings (npm_config_prefix, npm_config_local_prefix,
 * ...), which would point the nested npm commands at the checkout or the real global folder. Only where the
 * cache and the npm config files are is kept.
 */
const KEEP_NPM_ENV = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_cafile', 'npm_config_registry']);
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || KEEP_NPM_ENV.has(k.toLowerCase())));
}

function sh(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...cleanEnv(), ...env }, timeout: 240_000 });
}

function ok(r: SpawnSyncReturns<string>): SpawnSyncReturns<string> {
  if (r.status !== 0) throw new Error(`exit ${r.status} (${r.error?.message ?? r.signal ?? ''})\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * The consumer's package.json and lockfile: atflow's runtime dependency tree taken from atflow's own lockfile
 * (same versions and integrity hashes, so `npm ci --offline` finds every tarball in the cache without asking
 * the registry for metadata), plus @types/node, which atflow's declarations reference (NodeJS.ProcessEnv, Buffer).
 */
function writeConsumerProject(dir: string, tarball: string): void {
  const spec = `file:${path.relative(dir, tarball)}`;
  const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  const typesNode = LOCK.packages['node_modules/@types/node'];
  const dependencies = { atflow: spec, '@types/node': typesNode.version };
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies },
    'node_modules/atflow': {
      version: OWN.version,
      resolved: spec,
      integrity,
      license: OWN.license,
      dependencies: OWN.dependencies,
      optionalDependencies: OWN.optionalDependencies,
      bin: OWN.bin,
      engines: OWN.engines,
    },
  };
  const typesOnly = new Set(['node_modules/@types/node', ...Object.keys(typesNode.dependencies ?? {}).map((d) => `node_modules/${d}`)]);
  for (const [key, entry] of Object.entries<Record<string, unknown>>(LOCK.packages)) {
    if (key === '' || (entry.dev && !typesOnly.has(key))) continue;
    const { dev: _dev, devOptional, ...rest } = entry;
    packages[key] = devOptional ? { ...rest, optional: true } : rest;
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, dependencies }, null, 2));
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
}

/** One epoch of PGD-AT on 64 MNIST digits, the MLP; `variants` makes two runs of it. */
function tinyConfig(file: string, variants: boolean): string {
  const base = {
    name: variants ? 'tiny-variants' : 'tiny',
    seed: 1,
    epochs: 1,
    data: { source: 'mnist', trainSize: 64, testSize: 64, batchSize: 32, testBatchSize: 64, augment: 'none' },
    labelNoise: { kind: 'symmetric', rate: 0 },
    model: { name: 'mlp' },
    attack: { norm: 'linf', eps: 0.1, alpha: 0.05, steps: 2 },
    optimizer: { lr: 0.05, momentum: 0.9, weightDecay: 0 },
    schedule: { name: 'multistep', milestones: [], gamma: 0.1 },
    eval: { every: 1 },
    checkpoint: { every: 1 },
  };
  const config = variants
    ? { ...base, variants: { pgd: { trainer: { name: 'pgd-at' } }, trades: { trainer: { name: 'trades', beta: 6 } } } }
    : { ...base, trainer: { name: 'pgd-at' } };
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

function runFolders(out: string): string[] {
  return fs.existsSync(out) ? fs.readdirSync(out).filter((d) => fs.statSync(path.join(out, d)).isDirectory()).map((d) => path.join(out, d)) : [];
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-package-'));
  const packed = JSON.parse(ok(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT)).stdout)[0];
  packedFiles = packed.files.map((f: { path: string }) => f.path);
  app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  writeConsumerProject(app, path.join(tmp, packed.filename));
  // --ignore-scripts: tfjs-node's install script would try to download libtensorflow; unbuilt, it is
  // skipped and atflow runs on wasm, as it does for a user whose download fails.
  ok(sh('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], app));
  // `npm link` in the checkout, into a throw-away global prefix: <prefix>/bin/atflow → lib/node_modules/atflow/bin/atflow.js, lib/node_modules/atflow → checkout.
  globalPrefix = path.join(tmp, 'global');
  ok(sh('npm', ['link', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], ROOT, { npm_config_prefix: globalPrefix }));
}, 300_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the tarball', () => {
  it('holds the compiled library, the bin and the docs, and none of the sources, tests or benchmarks', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/atflow.js', 'dist/index.js', 'dist/index.d.ts', 'dist/index.js.map', 'dist/cli/main.js', 'dist/run/data-parallel/worker.js', 'config/quickstart.json']) {
      expect(packedFiles).toContain(f);
    }
    expect(packedFiles.filter((f) => /^(src|test|bench|examples|node_modules)\//.test(f) || f === 'dist/.build-stamp')).toEqual([]);
  });

  it('installs without tsx or typescript: the package runs compiled JavaScript', () => {
    const installed = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', 'atflow', 'package.json'), 'utf8'));
    expect(Object.keys(installed.dependencies)).not.toContain('tsx');
    expect(Object.keys(installed.dependencies)).not.toContain('typescript');
    expect(fs.existsSync(path.join(app, 'node_modules', 'tsx'))).toBe(false);
    expect(fs.existsSync(path.join(app, 'node_modules', 'typescript'))).toBe(false);
  });
});

type Cli = (args: string[], env?: NodeJS.ProcessEnv) => SpawnSyncReturns<string>;
const CLIS: [string, () => Cli][] = [
  // the symlink npm creates in a dependent project, started directly as an executable (its shebang)
  ['node_modules/.bin/atflow', () => (args, env) => sh(path.join(app, 'node_modules', '.bin', 'atflow'), args, app, env)],
  ['npx atflow', () => (args, env) => sh('npx', ['atflow', ...args], app, env)],
  ['npm link', () => (args, env) => sh(path.join(globalPrefix, 'bin', 'atflow'), args, app, env)],
];

describe.each(CLIS)('%s', (name, cli) => {
  it('--version prints the package version', () => {
    const r = cli()(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(OWN.version);
  });

  it('models --json prints every model with its parameter count', () => {
    const r = cli()(['models', '--json']);
    expect(r.status).toBe(0);
    const rows = JSON.parse(r.stdout);
    // the MLP 784-256-256-10: weights and biases of its three layers
    expect(rows[0]).toEqual({ name: 'mlp', classes: 10, parameters: 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10 });
    expect(rows).toEqual(listModels([10, 100]).map((m) => ({ name: m.name, classes: m.classes, parameters: m.parameters })));
  });

  it('a bad config exits non-zero and says which field is wrong', () => {
    const bad = path.join(tmp, `bad-${name.replace(/\W+/g, '-')}.json`);
    fs.writeFileSync(bad, JSON.stringify({ name: 'bad', epochs: -1, model: { name: 'mlp' } }));
    const out = path.join(tmp, `bad-out-${name.replace(/\W+/g, '-')}`);
    const r = cli()(['run', bad, '--out', out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('invalid config');
    expect(r.stderr).toMatch(/epochs: .*-1/);
    expect(runFolders(out)).toEqual([]);
  });
});

describe('atflow run through the installed package', () => {
  it('npx atflow run: two variants in child processes, each training data-parallel on 2 worker threads, all finish', () => {
    const out = path.join(tmp, 'runs-npx');
    // --workers 2: a child `atflow` process per variant (the installed bin); ATFLOW_WORKERS=2: the
    // data-parallel pool's worker threads (dist/run/data-parallel/worker.js) in each of them.
    ok(sh('npx', ['atflow', 'run', tinyConfig(path.join(tmp, 'variants.json'), true), '--out', out, '--workers', '2'], app, { ATFLOW_WORKERS: '2' }));
    const dirs = runFolders(out);
    expect(dirs.map((d) => path.basename(d).split('-')[2]).sort()).toEqual(['pgd', 'trades']);
    for (const d of dirs) {
      expect(fs.existsSync(path.join(d, '_SUCCESS'))).toBe(true);
      expect(JSON.parse(fs.readFileSync(path.join(d, 'checkpoints', 'epoch-0001', 'state.json'), 'utf8')).workers).toBe(2);
    }
  });

  it('the `npm link` bin runs a config from the checkout', () => {
    const out = path.join(tmp, 'runs-link');
    ok(sh(path.join(globalPrefix, 'bin', 'atflow'), ['run', tinyConfig(path.join(tmp, 'tiny.json'), false), '--out', out, '--quiet'], tmp));
    const dirs = runFolders(out);
    expect(dirs).toHaveLength(1);
    expect(fs.existsSync(path.join(dirs[0], '_SUCCESS'))).toBe(true);
  });
});

describe('atflow as a library in a consumer project', () => {
  const CONSUMER = `
import { attack, countParameters, createModel, createTrainer, defaultRegistry, executeRun, loadRuns, parquetRunSink, type RunOutcome } from 'atflow';

/** Never called: the declarations are real types, so these must not type-check. */
export function wrongUses(): void {
  // @ts-expect-error numClasses is a number
  createModel('mlp', { numClasses: 'ten', seed: 1 });
  // @ts-expect-error executeRun needs a registry
  void executeRun(loadRuns('x.json')[0], { outDir: 'out' });
}

async function main(): Promise<void> {
  const [config, outDir] = process.argv.slice(2);
  const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 1 });
  const parameters = countParameters(model);
  const trainer = createTrainer('pgd-at', { attack: { eps: 0.1, alpha: 0.05, steps: 2, norm: 'linf' } });
  const attackStep: ReturnType<typeof attack> = attack({ model, trainer, seed: 1 });
  model.dispose();
  const [run] = loadRuns(config);
  const outcome: RunOutcome = await executeRun(run, { outDir, registry: defaultRegistry(), backend: 'wasm', sinks: () => [parquetRunSink()] });
  process.stdout.write(JSON.stringify({ parameters, operator: typeof attackStep, status: outcome.status, runDir: outcome.runDir }) + '\\n');
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(\`\${e instanceof Error ? e.stack : String(e)}\\n\`);
    process.exit(1);
  },
);
`;

  it('imports executeRun, createModel and an operator, type-checks under strict (no experimentalDecorators) and runs with plain node', () => {
    const source = path.join(app, 'consumer.ts');
    fs.writeFileSync(source, CONSUMER);
    // The compiler as `tsc --strict --module node16` runs it (node16 resolution reads the package's
    // "exports" map, types included). Diagnostics are collected for the consumer and atflow's
    // declarations: checking all of tfjs's own .d.ts under strict reports errors that every tfjs
    // user has (upstream; projects set skipLibCheck), and would take most of this test's time.
    const options: ts.CompilerOptions = {
      strict: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      types: ['node'],
      outDir: path.join(app, 'build'),
    };
    const program = ts.createProgram([source], options);
    const atflowDir = path.join(app, 'node_modules', 'atflow') + path.sep;
    const checked = program.getSourceFiles().filter((f) => f.fileName === source.split(path.sep).join('/') || path.resolve(f.fileName).startsWith(atflowDir));
    expect(checked.filter((f) => f.fileName.endsWith('/dist/index.d.ts'))).toHaveLength(1);
    const diagnostics = [
      ...program.getOptionsDiagnostics(),
      ...program.getGlobalDiagnostics(),
      ...checked.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]),
    ];
    const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => app, getNewLine: () => '\n' };
    expect(diagnostics.map((d) => ts.formatDiagnostic(d, host))).toEqual([]);
    expect(program.emit(program.getSourceFile(source)).emitSkipped).toBe(false);

    const out = path.join(tmp, 'runs-library');
    const r = ok(sh(process.execPath, [path.join(app, 'build', 'consumer.js'), tinyConfig(path.join(tmp, 'library.json'), false), out], app));
    const result = JSON.parse(r.stdout.trim().split('\n')[0]);
    expect(result).toMatchObject({ parameters: 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10, operator: 'function', status: 'completed' });
    for (const f of ['_SUCCESS', 'epochs.parquet', 'steps.parquet']) expect(fs.existsSync(path.join(out, path.basename(result.runDir), f))).toBe(true);
  });

  it("ES modules import atflow's named exports", () => {
    const r = sh(process.execPath, ['--input-type=module', '-e', "import { executeRun, createModel, attack, sweep } from 'atflow'; console.log([executeRun, createModel, attack, sweep.runSweep].map((f) => typeof f).join(' '))"], app);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function function function function');
  });
});
