import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import type { RunEvent } from '../../src/core/run-event';
import type { AttackObjective } from '../../src/algorithms/attacks/types';
import type { ObjectiveOptions } from '../../src/algorithms/objectives/by-name';
import { defaultRegistry } from '../../src/run/default-registry';
import { runConfig } from '../../src/cli/run-config';
import type { RunSink } from '../../src/core/run-sink';
import { tempRoot, tinySpec, writeJson } from '../reliability/helpers';

/** Issue 15: the 'objective' and 'sink' kinds were registered in name only; runs now build them through the registry. */
const root = tempRoot('atflow-lookups-');
const quiet = { quiet: true, backend: 'cpu' as const, log: () => undefined };

describe('objectives and sinks are looked up in the registry on the run path', () => {
  jest.setTimeout(120_000);

  it("a run's sinks are built by name: a registered one in logging.sinks sees the whole stream, and 'progress' can be replaced", async () => {
    const registry = defaultRegistry();
    const seen: string[] = [];
    let progressReplaced = 0;
    registry.register('sink', 'event-types', (): RunSink => ({ name: 'event-types', handle: (ev: RunEvent) => void seen.push(ev.type) }));
    registry.register('sink', 'progress', (): RunSink => ({ name: 'silent', handle: () => void (progressReplaced += 1) }));
    // the objective PGD-AT's inner attack maximises: the registry's 'ce', wrapped to count its uses
    const builtin = defaultRegistry();
    let ceCalls = 0;
    registry.register('objective', 'ce', (o: ObjectiveOptions): AttackObjective => {
      ceCalls += 1;
      return builtin.create<AttackObjective, ObjectiveOptions>('objective', 'ce', o);
    });
    const config = writeJson(path.join(root, 'sinks.json'), tinySpec('sinks', { epochs: 1, logging: { sinks: ['event-types'] } }));
    expect(await runConfig(config, { outDir: path.join(root, 'out'), registry, ...quiet })).toBe(0);
    expect(seen[0]).toBe('run-start');
    expect(seen[seen.length - 1]).toBe('run-end');
    expect(seen.filter((t) => t === 'step')).toHaveLength(2);
    expect(progressReplaced).toBe(seen.length);
    expect(ceCalls).toBe(2); // one objective per training step's attack
  });

  it('an unknown sink name is refused before anything runs, naming the field', async () => {
    const config = writeJson(path.join(root, 'bad-sink.json'), tinySpec('bad', { logging: { sinks: ['parquett'] } }));
    const out = path.join(root, 'bad-out');
    await expect(runConfig(config, { outDir: out, ...quiet })).rejects.toThrow(AtflowError);
    await expect(runConfig(config, { outDir: out, ...quiet })).rejects.toThrow(
      /logging\.sinks: unknown sink 'parquett' \(did you mean 'parquet'\?\); registered sinks: arrow, parquet, progress, summary/,
    );
    await expect(
      runConfig(writeJson(path.join(root, 'ok.json'), tinySpec('ok')), { outDir: out, ...quiet, sinkNames: ['nope'] }),
    ).rejects.toThrow(/--sink: unknown sink 'nope'/);
    expect(require('fs').existsSync(out)).toBe(false);
  });
});
