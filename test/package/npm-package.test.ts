/**
 * atflow as npm users get it, outside its checkout: `npm pack`, the tarball installed into a fresh project
 * (offline, from the npm cache that `npm ci` filled), then the CLI through every way it reaches a PATH
 * (node_modules/.bin, `npx atflow`, the global symlink `npm link` makes), and the library from a consumer
 * TypeScript file compiled with `strict` and no experimentalDecorators, run with plain node; then the
 * tensorflow backend built into that project by `npx atflow setup-tensorflow`, and the README's code
 * blocks run there as printed. Node's engine range is checked against the whole lockfile.
 * The tarball is packed with --ignore-scripts: jest's global setup has just rebuilt dist/ if it was stale,
 * and `prepare` would only build it a second time.
 */
import type { SpawnSyncReturns } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as semver from 'semver';
import * as ts from 'typescript';
import { removeSetupRecord } from '../../src/backend/tensorflow-setup';
import { listModels } from '../../src/models';
import { duck, lit } from '../logs/duck';
import { ok, sh } from './npm';

const ROOT = path.join(__dirname, '..', '..');
const OWN = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const LOCK = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));

let tmp: string;
let app: string;
let globalPrefix: string;
let packedFiles: string[];

/**
 * The consumer's package.json and lockfile: atflow's runtime dependency tree taken from atflow's own lockfile
 * (same versions and integrity hashes, so `npm ci --offline` finds every tarball in the cache without asking
 * the registry for metadata), plus @types/node, which atflow's declarations reference (NodeJS.ProcessEnv, Buffer),
 * and rxjs as a dependency of its own, as the README's `npm install rxjs` makes it. A CommonJS
 * package, as `npm init -y` writes it.
 */
function writeConsumerProject(dir: string, tarball: string): void {
  const spec = `file:${path.relative(dir, tarball)}`;
  const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  const typesNode = LOCK.packages['node_modules/@types/node'];
  const dependencies = { atflow: spec, '@types/node': typesNode.version, rxjs: LOCK.packages['node_modules/rxjs'].version };
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
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'commonjs', dependencies }, null, 2),
  );
  fs.writeFileSync(
    path.join(dir, 'package-lock.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2),
  );
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
  return fs.existsSync(out)
    ? fs
        .readdirSync(out)
        .filter((d) => fs.statSync(path.join(out, d)).isDirectory())
        .map((d) => path.join(out, d))
    : [];
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
  // the record `atflow setup-tensorflow` keeps in the cache for the consumer project (see below)
  if (app) removeSetupRecord(fs.realpathSync(app));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the tarball', () => {
  it('holds the compiled library, the bin and the docs, and none of the sources, tests or benchmarks', () => {
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'bin/atflow.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/cli/main.js',
      'dist/run/data-parallel/worker.js',
      'config/quickstart.json',
    ]) {
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
    ok(
      sh('npx', ['atflow', 'run', tinyConfig(path.join(tmp, 'variants.json'), true), '--out', out, '--workers', '2'], app, {
        ATFLOW_WORKERS: '2',
      }),
    );
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
    const checked = program
      .getSourceFiles()
      .filter((f) => f.fileName === source.split(path.sep).join('/') || path.resolve(f.fileName).startsWith(atflowDir));
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
    const r = ok(
      sh(process.execPath, [path.join(app, 'build', 'consumer.js'), tinyConfig(path.join(tmp, 'library.json'), false), out], app),
    );
    const result = JSON.parse(r.stdout.trim().split('\n')[0]);
    expect(result).toMatchObject({
      parameters: 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10,
      operator: 'function',
      status: 'completed',
    });
    for (const f of ['_SUCCESS', 'epochs.parquet', 'steps.parquet'])
      expect(fs.existsSync(path.join(out, path.basename(result.runDir), f))).toBe(true);
  });

  it("ES modules import atflow's named exports", () => {
    const r = sh(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import { executeRun, createModel, attack, sweep } from 'atflow'; console.log([executeRun, createModel, attack, sweep.runSweep].map((f) => typeof f).join(' '))",
      ],
      app,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function function function function');
  });
});

describe('Node versions', () => {
  const floor = semver.minVersion(OWN.engines.node)!.version;

  it("no package in the lockfile refuses the oldest Node that package.json's engines allow, and the README names that Node", () => {
    const refusing = Object.entries<{ engines?: { node?: string } }>(LOCK.packages)
      .filter(([, p]) => p.engines?.node && !semver.satisfies(floor, p.engines.node, { includePrerelease: true }))
      .map(([key, p]) => `${key} wants node ${p.engines!.node}`);
    expect(refusing).toEqual([]);
    const readme = /Node ≥ (\d+(?:\.\d+)*)/.exec(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    expect(semver.coerce(readme?.[1])?.version).toBe(floor);
  });

  it("npm's own engine check on this Node warns about nothing (no EBADENGINE from `npm ci`)", () => {
    const r = ok(sh('npm', ['install', '--dry-run', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], ROOT));
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/EBADENGINE/);
  });
});

/** Every installed copy of a package under a node_modules tree (nested ones included). */
function installedCopies(nodeModules: string, name: string): string[] {
  const out: string[] = [];
  const visit = (dir: string): void => {
    if (!fs.existsSync(dir)) return;
    for (const entry of fs.readdirSync(dir)) {
      if (entry.startsWith('.')) continue;
      const names = entry.startsWith('@') ? fs.readdirSync(path.join(dir, entry)).map((n) => `${entry}/${n}`) : [entry];
      for (const n of names) {
        const pkg = path.join(dir, n);
        if (n === name) out.push(pkg);
        visit(path.join(pkg, 'node_modules'));
      }
    }
  };
  visit(nodeModules);
  return out;
}

/**
 * The fast backend from a project that depends on atflow. Before: a hand-run `bash node_modules/atflow/
 * scripts/setup-tensorflow.sh` installed atflow's dev dependencies and a second tfjs into node_modules/atflow,
 * and the project's next `npm install` removed it without a word. Where no TensorFlow wheel is reachable
 * through pip, the command says so and changes nothing.
 */
describe('npx atflow setup-tensorflow in the consumer project', () => {
  const wheel = sh('bash', [path.join(ROOT, 'scripts', 'setup-tensorflow.sh'), '--check'], ROOT).status === 0;
  const tfjsNode = () => path.join(app, 'node_modules', '@tensorflow', 'tfjs-node');
  // the installed bin without npx's start-up: these only ask which backend start-up picks
  const atflow = () => path.join(app, 'node_modules', '.bin', 'atflow');
  const backendOf = (env: NodeJS.ProcessEnv = {}) => {
    const r = sh(atflow(), ['backend', '--json'], app, env);
    expect(r.status).toBe(0);
    return { name: JSON.parse(r.stdout).name as string, stderr: r.stderr };
  };

  (wheel ? it : it.skip)(
    "builds tfjs-node into the project, next to the project's one @tensorflow/tfjs, without atflow's dev dependencies",
    () => {
      // the script run by hand from the installed copy refuses, and points to the command
      const byHand = sh('bash', [path.join(app, 'node_modules', 'atflow', 'scripts', 'setup-tensorflow.sh')], app);
      expect(byHand.status).toBe(64);
      expect(byHand.stderr).toContain('npx atflow setup-tensorflow');

      const r = ok(sh('npx', ['atflow', 'setup-tensorflow'], app));
      expect(r.stderr).toMatch(/done: @tensorflow\/tfjs-node runs on TensorFlow \d+\.\d+/);
      expect(fs.existsSync(path.join(app, 'node_modules', 'atflow', 'node_modules'))).toBe(false);
      expect(installedCopies(path.join(app, 'node_modules'), '@tensorflow/tfjs')).toEqual([
        path.join(app, 'node_modules', '@tensorflow', 'tfjs'),
      ]);
      expect(installedCopies(path.join(app, 'node_modules'), '@tensorflow/tfjs-node')).toEqual([tfjsNode()]);
      // A consumer that imports tfjs itself sees the backend atflow chose: one tfjs, one set of kernels.
      const both = ok(
        sh(
          process.execPath,
          [
            '-e',
            "const tf = require('@tensorflow/tfjs'); require('atflow').initBackend().then((b) => console.log(JSON.stringify({ atflow: b.name, consumer: tf.getBackend() })))",
          ],
          app,
        ),
      );
      expect(JSON.parse(both.stdout)).toEqual({ atflow: 'tensorflow', consumer: 'tensorflow' });
      expect(both.stderr).not.toMatch(/already registered/);
    },
  );

  (wheel ? it : it.skip)("the project's next `npm install` keeps it", () => {
    // --ignore-scripts only spares the optional tfjs-node-gpu its failing libtensorflow download; what npm keeps is the same
    ok(sh('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], app));
    expect(backendOf()).toEqual({ name: 'tensorflow', stderr: expect.not.stringContaining('gone') });
  });

  (wheel ? it : it.skip)('when `npm ci` has deleted the build, start-up says so and names the command, which restores it', () => {
    // What `npm ci` leaves: the package reinstalled without its addon (with install scripts on, npm removes
    // the whole package once its libtensorflow download fails; atflow sees the same thing: no addon).
    for (const d of ['lib', 'deps', 'build']) fs.rmSync(path.join(tfjsNode(), d), { recursive: true, force: true });
    const lost = backendOf();
    expect(lost.name).toBe('wasm');
    expect(lost.stderr).toContain(`the tensorflow backend that \`atflow setup-tensorflow\` built in ${fs.realpathSync(app)}`);
    expect(lost.stderr).toContain('is gone');
    expect(lost.stderr).toContain('`npx atflow setup-tensorflow` builds it again');
    // chosen on purpose: no message
    expect(backendOf({ ATFLOW_BACKEND: 'wasm' })).toEqual({ name: 'wasm', stderr: '' });
    const forced = sh(atflow(), ['backend', '--backend', 'tensorflow'], app);
    expect(forced.status).toBe(2);
    expect(forced.stderr).toContain('`npx atflow setup-tensorflow` builds it again');

    ok(sh('npx', ['atflow', 'setup-tensorflow'], app));
    expect(backendOf()).toEqual({ name: 'tensorflow', stderr: expect.not.stringContaining('gone') });
  });

  (wheel ? it.skip : it)('without a reachable TensorFlow wheel it says so, exits 0 and atflow stays on wasm', () => {
    const r = ok(sh('npx', ['atflow', 'setup-tensorflow'], app));
    expect(r.stderr).toMatch(/no wheel for .* is reachable through pip/);
    expect(fs.existsSync(path.join(app, 'node_modules', 'atflow', 'node_modules'))).toBe(false);
    expect(backendOf().name).toBe('wasm');
  });
});

/** The README's fenced blocks of one language, exactly as printed. */
function readmeBlocks(lang: string): string[] {
  const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...md.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === lang).map((m) => m[2]);
}

/**
 * The README's code, saved where its text says, in the consumer project (atflow and rxjs installed), compiled
 * with its tsconfig.json by the TypeScript that `npm install -D typescript` gives (atflow's own, same
 * version) and run with plain node. A ts / js block names its file on its first line (`// run.ts: …`).
 */
describe('the README code blocks, as printed, in a project that depends on atflow', () => {
  let dir: string;
  beforeAll(() => {
    dir = path.join(app, 'readme');
    fs.mkdirSync(dir, { recursive: true });
    for (const block of [...readmeBlocks('ts'), ...readmeBlocks('js')]) {
      const file = /^\/\/ ([\w.-]+\.[jt]s)\b/.exec(block)?.[1];
      if (!file) throw new Error(`a README code block does not name its file on its first line:\n${block}`);
      fs.writeFileSync(path.join(dir, file), block);
    }
    const [tsconfig, ...more] = readmeBlocks('json');
    expect(more).toEqual([]);
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), tsconfig);
  });

  it('run.ts compiles with the README tsconfig.json (strict, skipLibCheck) and stops once TRADES has memorized half of the random labels under attack', async () => {
    const tsc = sh(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir);
    expect(`${tsc.stdout}${tsc.stderr}`).toBe('');
    expect(tsc.status).toBe(0);

    const r = ok(sh(process.execPath, ['run.js'], dir));
    expect(r.stderr).not.toMatch(/already registered/);
    const m = /^completed after epoch (\d+); logs in (\S+)$/m.exec(r.stdout);
    expect(m).not.toBeNull();
    const runDir = path.join(dir, m![2]);
    expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(true);
    // The stop rule ended it, at the first epoch that reached 50 % against the random labels (chance: 10 %),
    // well before its 80 epochs and not at the first one.
    const rows = await duck(`SELECT epoch, train_robust_acc FROM read_parquet(${lit(path.join(runDir, 'epochs.parquet'))}) ORDER BY epoch`);
    const last = Number(m![1]);
    expect(rows.map((x) => x.epoch)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    expect(last).toBeGreaterThan(5);
    expect(last).toBeLessThan(80);
    expect(rows[last - 1].train_robust_acc).toBeGreaterThanOrEqual(0.5);
    expect(rows.slice(0, -1).every((x) => x.train_robust_acc < 0.5)).toBe(true);
  });

  it('my-plugin.js registers a trainer that a config picks by name', () => {
    const config = JSON.parse(fs.readFileSync(tinyConfig(path.join(dir, 'plugin.json'), false), 'utf8'));
    fs.writeFileSync(
      path.join(dir, 'plugin.json'),
      JSON.stringify({ ...config, name: 'plugin', plugins: ['./my-plugin.js'], trainer: { name: 'my-at' } }),
    );
    const out = path.join(dir, 'runs-plugin');
    ok(sh('npx', ['atflow', 'run', 'plugin.json', '--out', out, '--quiet'], dir));
    const [run] = runFolders(out);
    expect(fs.existsSync(path.join(run, '_SUCCESS'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(run, 'spec.json'), 'utf8')).spec.trainer.name).toBe('my-at');
  });
});
