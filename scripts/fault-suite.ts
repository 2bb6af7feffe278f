/**
 * The long fault suite (issue 24; docs/reliability.md carries its totals): the same cases as
 * test/reliability/fault-suite.test.ts, with more kill -9 moments (every third also killed again during
 * its resume), two --resume at once, against the bin of a packed and installed tarball.
 *
 *   npx tsx scripts/fault-suite.ts [--kills 30] [--seed 24] [--parallel 2] [--backend wasm|cpu] [--link]
 *
 * --link uses `npm link` instead of `npm pack` + `npm install -g <tarball>` (offline, from the npm
 * cache). Needs root for the full-disk (tmpfs), read-only (bind mount) and other-node (unshare) cases.
 * Exits 1 when a case crashed, differed from the uninterrupted run, or did not meet its expectation.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { faultCases, formatTotals, npmLinkBin, prepareSuite, ROOT, runSuite, totals } from '../test/reliability/fault-suite';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** `npm pack`, then the tarball installed globally into a throw-away prefix (offline: the npm cache has every dependency). */
function packedBin(prefix: string): string {
  fs.mkdirSync(prefix, { recursive: true });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  const packed = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', prefix], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
  });
  if (packed.status !== 0) throw new Error(`npm pack failed: ${packed.stderr}`);
  const tarball = path.join(prefix, JSON.parse(packed.stdout)[0].filename);
  const r = spawnSync('npm', ['install', '-g', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball], {
    env: { ...env, npm_config_prefix: prefix },
    encoding: 'utf8',
    timeout: 900_000,
  });
  if (r.status !== 0) throw new Error(`npm install -g ${tarball} failed: ${r.stderr.slice(-2000)}`);
  return path.join(prefix, 'bin', 'atflow');
}

async function main(): Promise<void> {
  const t0 = Date.now();
  // the tarball and `npm link` both run dist/: build it first when src/ is newer (as jest's global setup does)

  const build = require(path.join(ROOT, 'scripts', 'build.js')) as { isFresh: () => boolean; build: () => number };
  if (!build.isFresh() && build.build() === 1) throw new Error('npm run build failed');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-faults-long-'));
  const log = (l: string) => process.stdout.write(`${l}\n`);
  let bin: string;
  if (process.argv.includes('--link')) bin = npmLinkBin(path.join(root, 'prefix'));
  else {
    try {
      bin = packedBin(path.join(root, 'prefix'));
      log(`installed from a packed tarball: ${bin}`);
    } catch (e) {
      log(`packed install failed (${(e as Error).message.split('\n')[0]}); using npm link`);
      bin = npmLinkBin(path.join(root, 'prefix-link'));
    }
  }
  const seed = Number(arg('seed', '24'));
  const suite = await prepareSuite(bin, root, { backend: arg('backend', 'wasm') as 'wasm' | 'cpu', seed, log });
  log(`seed ${seed}; reference run ${suite.referenceMs} ms; mount rights: ${suite.canMount}`);
  const canUnshare = spawnSync('unshare', ['-u', 'true']).status === 0;
  const all = faultCases({ kills: Number(arg('kills', '30')), long: true });
  const cases = all.filter((c) => (c.needs === 'mount' ? suite.canMount : c.needs === 'unshare' ? canUnshare : true));
  for (const c of all.filter((x) => !cases.includes(x))) log(`left out (needs ${c.needs}): ${c.name}`);
  const results = await runSuite(suite, cases, Number(arg('parallel', '2')));
  const t = totals(results);
  log(formatTotals(t, (Date.now() - t0) / 1000));
  fs.rmSync(root, { recursive: true, force: true });
  process.exit(t.crashes + t.differs + t.unmet > 0 ? 1 : 0);
}

void main();
