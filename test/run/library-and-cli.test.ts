import * as path from 'path';
import { config as rxjsConfig, throwError } from 'rxjs';
import { initBackend } from '../../src/backend/select';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun } from '../../src/run/execute-run';
import { resolveRuns } from '../../src/config/spec';
import { runConfig } from '../../src/cli/run-config';
import { tempRoot, tinySpec, writeJson } from '../reliability/helpers';

/**
 * Issue 23, "the library and the CLI are mixed": the library API has no process-wide side effects.
 * runConfig (the CLI's driver: signals, exit 130, variant processes, the summary table) was exported
 * from src/index.ts and left its SIGINT / SIGTERM handlers installed for good; the event hub took over
 * RxJS's unhandled-error hook for the whole process while a run was open (an error of unrelated code
 * failed the run) and, on closing, put back the handler it found, dropping one a user set meanwhile.
 */
const root = tempRoot('atflow-lib-cli-');
const quick = (name: string) => tinySpec(name, { epochs: 1, logging: { examples: false }, eval: { train: false, final: { examples: 8 } } });

describe('the library has no process-wide side effects', () => {
  jest.setTimeout(180_000);
  beforeAll(() => initBackend('wasm'));
  afterEach(() => {
    rxjsConfig.onUnhandledError = null;
  });

  it('src/index.ts exports no CLI driver, and importing it installs no signal handler', () => {
    const before = ['SIGINT', 'SIGTERM'].map((s) => process.listenerCount(s));

    const api = require('../../src');
    expect(Object.keys(api)).not.toContain('runConfig');
    expect(['SIGINT', 'SIGTERM'].map((s) => process.listenerCount(s))).toEqual(before);
  });

  it("runConfig (the CLI's driver) removes its signal handlers when it returns", async () => {
    const before = ['SIGINT', 'SIGTERM'].map((s) => process.listenerCount(s));
    const config = writeJson(path.join(root, 'signals.json'), quick('signals'));
    expect(await runConfig(config, { outDir: path.join(root, 'signals'), backend: 'wasm', quiet: true, log: () => undefined })).toBe(0);
    expect(['SIGINT', 'SIGTERM'].map((s) => process.listenerCount(s))).toEqual(before);
  });

  it("an RxJS error of code outside the run goes to the process's handler, not into the run; a handler set meanwhile is kept", async () => {
    const elsewhere: unknown[] = [];
    const previous = (e: unknown) => elsewhere.push(e);
    rxjsConfig.onUnhandledError = previous;
    const later = (e: unknown) => elsewhere.push(['later', e]);
    // unrelated code, started before the run: an unhandled RxJS error while the run trains
    let training = false;
    const unrelated = setInterval(() => {
      if (!training) return;
      training = false;
      throwError(() => new Error('not the run')).subscribe();
    }, 2);
    try {
      const outcome = await executeRun(resolveRuns(quick('scoped'))[0], {
        outDir: path.join(root, 'scoped'),
        registry: defaultRegistry(),
        backend: 'wasm',
        observe: (ev$) =>
          void ev$.subscribe((ev) => {
            if (ev.type === 'epoch-start') training = true;
            if (ev.type === 'run-end') rxjsConfig.onUnhandledError = later;
          }),
      });
      expect(outcome.status).toBe('completed');
    } finally {
      clearInterval(unrelated);
    }
    expect(elsewhere.map((e) => (e instanceof Error ? e.message : e))).toEqual(['not the run']);
    expect(rxjsConfig.onUnhandledError).toBe(later);
  });
});
