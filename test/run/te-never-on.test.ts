import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';
import { defaultRegistry } from '../../src/run/default-registry';
import { executeRun } from '../../src/run/execute-run';
import { resolveRuns, specWarnings, validateSpec } from '../../src/config/spec';
import { ProgressDisplay } from '../../src/logs/progress';
import { readRunSummary, SummaryWriter } from '../../src/logs/summary';
import { tinySpec } from '../reliability/helpers';

/** Issue 11: TE that can never switch on is said out loud; a momentum that freezes it is refused. */

function configError(raw: unknown): string {
  try {
    validateSpec(raw, 'te.json');
  } catch (e) {
    expect(e).toBeInstanceOf(AtflowError);
    return (e as Error).message;
  }
  throw new Error('expected a config error');
}

describe('TE settings that do nothing', () => {
  it('refuses te.momentum 1 in the schema, naming the path and the value', () => {
    const m = configError(tinySpec('x', { trainer: { name: 'pgd-at', te: { momentum: 1 } } }));
    expect(m).toMatch(/te\.json: invalid config\n\s+trainer\.te\.momentum: must be in \[0, 1\).*\(got 1\)/);
    // 0.99 stays valid
    expect(validateSpec(tinySpec('x', { trainer: { name: 'pgd-at', te: { momentum: 0.99 } } })).trainer.te!.momentum).toBe(0.99);
  });

  it('warns when te.start lies after the last epoch (the defaults 90/150 on an 80-epoch config), naming both values', () => {
    const spec = validateSpec({ epochs: 80, model: { name: 'mlp' }, trainer: { name: 'trades', te: {} } });
    const [w, ...rest] = specWarnings(spec);
    expect(rest).toEqual([]);
    expect(w).toMatch(/trainer\.te\.start is 90 but the run has only 80 epochs .*TE never switches on.*plain trades/);
    expect(specWarnings(validateSpec({ epochs: 90, model: { name: 'mlp' }, trainer: { te: {} } }))).toEqual([]);
    expect(specWarnings(validateSpec({ epochs: 10, model: { name: 'mlp' } }))).toEqual([]);
  });

  it('a run with that setting prints the warning and keeps it in summary.json', async () => {
    await initBackend('wasm');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-te-warn-'));
    const [run] = resolveRuns(
      tinySpec('tewarn', {
        epochs: 1,
        trainer: { name: 'pgd-at', te: { start: 5, end: 6 } },
        logging: { examples: false },
        eval: { train: false, final: { examples: 8 } },
      }),
    );
    let printed = '';
    const stream = { write: (s: string) => ((printed += s), true), isTTY: false } as unknown as NodeJS.WritableStream;
    const outcome = await executeRun(run, {
      outDir: out,
      registry: defaultRegistry(),
      backend: 'wasm',
      sinks: () => [new SummaryWriter(), new ProgressDisplay({ stream })],
    });
    expect(outcome.status).toBe('completed');
    expect(printed).toMatch(/warning: trainer\.te\.start is 5 but the run has only 1 epochs/);
    expect(readRunSummary(outcome.runDir).warnings).toEqual([
      expect.stringMatching(/^trainer\.te\.start is 5 but the run has only 1 epochs/),
    ]);
  }, 120_000);
});
