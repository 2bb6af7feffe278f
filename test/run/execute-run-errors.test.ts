import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { config as rxjsConfig, map } from 'rxjs';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import type { RunEvent } from '../../src/core/run-event';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun, type ExecuteRunOptions } from '../../src/run/execute-run';
import type { RunSink } from '../../src/core/run-sink';
import { resolveRuns } from '../../src/config/spec';
import { tempRoot, tinySpec } from '../reliability/helpers';

/**
 * Issue 11, executeRun's error paths: whatever fails (a sink's close, a damaged checkpoint on resume,
 * an observer that throws), the run's own error reaches the caller, the sinks get run-end and are
 * closed, and every tensor is freed.
 */

const root = tempRoot('atflow-errpaths-');
const registry = defaultRegistry();
/** One epoch of two steps on the small MLP, no per-example rows: about a second. */
const quick = (name: string, over: Record<string, unknown> = {}) =>
  resolveRuns(tinySpec(name, { epochs: 1, logging: { examples: false }, eval: { train: false, final: { examples: 8 } }, ...over }))[0];

/** A sink that records what it saw and whether it was closed; `failOn` / `failClose` make it throw. */
class RecordingSink implements RunSink {
  readonly name = 'recording';
  readonly seen: RunEvent[] = [];
  closed = 0;
  constructor(private readonly o: { failOn?: RunEvent['type']; failClose?: boolean } = {}) {}
  handle(ev: RunEvent): void {
    this.seen.push(ev);
    if (ev.type === this.o.failOn) throw new Error(`sink failed on ${ev.type}`);
  }
  close(): void {
    this.closed++;
    if (this.o.failClose) throw new Error('sink close failed');
  }
  get runEnd(): RunEvent | undefined {
    return this.seen.find((e) => e.type === 'run-end');
  }
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the run to fail');
}

describe('executeRun error paths', () => {
  jest.setTimeout(120_000);
  beforeAll(async () => {
    await initBackend('wasm');
  });
  afterEach(() => {
    // the hub hands RxJS's error reporting back when the run ends
    expect(rxjsConfig.onUnhandledError).toBeNull();
  });

  const exec = (name: string, options: Partial<ExecuteRunOptions>, over?: Record<string, unknown>) =>
    executeRun(quick(name, over), { outDir: path.join(root, name), registry, backend: 'wasm', ...options });

  describe('a sink whose close throws', () => {
    it('does not hide the run error, and the model is still freed', async () => {
      const before = tf.memory().numTensors;
      const sink = new RecordingSink({ failOn: 'epoch-end', failClose: true });
      const e = await rejection(exec('close-after-failure', { sinks: () => [sink] }));
      expect(e.message).toBe('sink failed on epoch-end');
      expect(sink.closed).toBe(1);
      expect(sink.runEnd).toMatchObject({ status: 'failed', error: 'sink failed on epoch-end' });
      expect(tf.memory().numTensors).toBe(before);
    });

    it('after a good run fails the call (no _SUCCESS) with its own error, the model freed', async () => {
      const before = tf.memory().numTensors;
      const sink = new RecordingSink({ failClose: true });
      const e = await rejection(exec('close-after-success', { sinks: () => [sink] }));
      expect(e.message).toBe('sink close failed');
      expect(sink.runEnd).toMatchObject({ status: 'completed' });
      expect(fs.readdirSync(path.join(root, 'close-after-success'))[0]).toMatch(/^close-after-success-/);
      const runDir = path.join(root, 'close-after-success', fs.readdirSync(path.join(root, 'close-after-success'))[0]);
      expect(fs.existsSync(path.join(runDir, '_SUCCESS'))).toBe(false);
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  describe('a resume that fails frees the model and the optimizer', () => {
    let finished = '';
    beforeAll(async () => {
      const outcome = await exec('resume', { sinks: () => [] }, { epochs: 2 });
      expect(outcome.status).toBe('completed');
      finished = outcome.runDir;
    });

    const damaged = (label: string, damage: (runDir: string) => void): string => {
      const out = path.join(root, `resume-${label}`);
      const runDir = path.join(out, path.basename(finished));
      fs.cpSync(finished, runDir, { recursive: true });
      fs.rmSync(path.join(runDir, '_SUCCESS'));
      damage(runDir);
      return out;
    };

    it.each([
      [
        'state.json without the optimizer state',
        (d: string) => fs.writeFileSync(path.join(d, 'checkpoints', 'epoch-0002', 'state.json'), '{"epoch": 2, "steps": 4}'),
        /no optimizer state \('sgd'\)/,
      ],
      [
        'a truncated model.safetensors',
        (d: string) => fs.truncateSync(path.join(d, 'checkpoints', 'epoch-0002', 'model.safetensors'), 200),
        /safetensors file .*truncated/,
      ],
      [
        'a momentum buffer missing from optimizer.safetensors',
        (d: string) => {
          const f = path.join(d, 'checkpoints', 'epoch-0002', 'state.json');
          const state = JSON.parse(fs.readFileSync(f, 'utf8'));
          state.sgd.names[0] = 'no-such-parameter';
          fs.writeFileSync(f, JSON.stringify(state));
        },
        /checkpoint has no 'sgd\/no-such-parameter' array/,
      ],
    ])('%s', async (label, damage, message) => {
      const out = damaged(label.replace(/\W+/g, '-'), damage);
      const before = tf.memory().numTensors;
      const e = await rejection(
        executeRun(quick('resume', { epochs: 2 }), { outDir: out, registry, backend: 'wasm', resume: true, sinks: () => [] }),
      );
      expect(e).toBeInstanceOf(AtflowError);
      expect(e.message).toMatch(message);
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  describe('an observer that throws fails the run cleanly (run-end, sinks closed, tensors freed) instead of killing the process', () => {
    const cases: [string, ExecuteRunOptions['observe']][] = [
      [
        'the observe callback itself',
        () => {
          throw new Error('observer boom');
        },
      ],
      [
        'a subscriber handler, on the first step',
        (ev$) =>
          void ev$.subscribe((ev) => {
            if (ev.type === 'step') throw new Error('observer boom');
          }),
      ],
      [
        'an operator in a piped chain, on epoch-end',
        (ev$) =>
          void ev$
            .pipe(
              map((ev) => {
                if (ev.type === 'epoch-end') throw new Error('observer boom');
                return ev;
              }),
            )
            .subscribe(),
      ],
    ];
    it.each(cases)('%s', async (label, observe) => {
      const before = tf.memory().numTensors;
      const sink = new RecordingSink();
      const e = await rejection(exec(`observer-${label.replace(/\W+/g, '-')}`, { sinks: () => [sink], observe }));
      expect(e.message).toBe('observer boom');
      expect(sink.runEnd).toMatchObject({ status: 'failed', error: 'observer boom' });
      expect(sink.closed).toBe(1);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
