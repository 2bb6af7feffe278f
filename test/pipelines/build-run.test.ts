import { initBackend } from '../../src/backend/select';
import { buildRun, type RunParts } from '../../src/pipelines/build-run';
import { defaultRegistry } from '../../src/pipelines/default-registry';
import { resolveRuns, type RunSpecInput } from '../../src/pipelines/spec';
import { noisyLabel } from '../../src/sources/label-noise';

const base: RunSpecInput = {
  name: 'b',
  seed: 5,
  epochs: 1,
  data: { source: 'mnist', trainSize: 200, testSize: 10 },
  labelNoise: { kind: 'symmetric', rate: 0.6 },
  model: { name: 'mlp' },
};

function parts(over: Record<string, unknown>): RunParts {
  const [run] = resolveRuns({ ...base, ...over } as Record<string, unknown>);
  return buildRun(run.spec, defaultRegistry());
}

/** sourceIndex → used label of a run's training split. */
function labelBySourceIndex(p: RunParts): Map<number, number> {
  const s = p.source.split('train');
  const m = new Map<number, number>();
  for (let i = 0; i < s.size; i++) m.set(s.sourceIndex[i], p.labels.labelsUsed[i]);
  p.model.dispose();
  p.optimizer.dispose?.();
  return m;
}

describe('buildRun', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('label noise follows the image (sourceIndex), not its position after the val carve or a seeded subset', () => {
    const plain = labelBySourceIndex(parts({}));
    const withVal = labelBySourceIndex(parts({ data: { ...base.data, trainSize: 150, valSize: 120 } }));
    const seeded = labelBySourceIndex(parts({ data: { ...base.data, trainSize: 100, options: { subset: 'seeded' } } }));
    const full = labelBySourceIndex(parts({ data: { ...base.data, trainSize: undefined } }));
    let shared = 0;
    for (const other of [plain, withVal, seeded]) {
      for (const [key, label] of other) {
        // the same image (key) has the same used label in every run that holds it
        expect(label).toBe(full.get(key));
        if (plain.has(key) && other !== plain) shared++;
      }
    }
    // the runs hold the same images at different positions (else the test would prove nothing)
    expect(shared).toBeGreaterThan(20);
    // and the draw is the documented pure function of (seed, sourceIndex)
    const p = parts({ data: { ...base.data, trainSize: 150, valSize: 120 } });
    const s = p.source.split('train');
    for (let i = 0; i < s.size; i++) expect(p.labels.labelsUsed[i]).toBe(noisyLabel('symmetric', 0.6, p.labels.seed, s.sourceIndex[i], s.labels[i], 10));
    p.model.dispose();
  });
});
