import { spawnSync, type SpawnSyncReturns } from 'child_process';

/**
 * Running npm (and the commands it installs) the way a user's shell would. Under `npm test` the environment
 * carries the outer npm's settings (npm_config_prefix, npm_config_local_prefix, ...), which would point the
 * nested npm commands at the checkout or the real global folder. Only where the cache and the npm config
 * files are is kept.
 */
const KEEP_NPM_ENV = new Set([
  'npm_config_cache',
  'npm_config_userconfig',
  'npm_config_globalconfig',
  'npm_config_cafile',
  'npm_config_registry',
]);
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || KEEP_NPM_ENV.has(k.toLowerCase())));
}

export function sh(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...cleanEnv(), ...env }, timeout: 240_000 });
}

export function ok(r: SpawnSyncReturns<string>): SpawnSyncReturns<string> {
  if (r.status !== 0) throw new Error(`exit ${r.status} (${r.error?.message ?? r.signal ?? ''})\n${r.stdout}\n${r.stderr}`);
  return r;
}
