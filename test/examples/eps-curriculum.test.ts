import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { runWithCurriculum } from '../../examples/eps-curriculum';
import { duck, lit } from '../logs/duck';
import { ranOnAutomaticBackend } from './automatic-backend';

describe('examples/eps-curriculum.ts: an epoch operator that changes the training attack per epoch', () => {
  jest.setTimeout(300_000);

  it("each epoch's training attack perturbs by exactly that epoch's ε of the linear ramp", async () => {
    const epochs = 4;
    const eps = 0.2;
    const tensorsBefore = tf.memory().numTensors;
    const { outcome, maxPerturbation } = await runWithCurriculum({
      outDir: fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-curriculum-')),
      epochs,
      trainSize: 64,
      testSize: 20,
      eps,
    });
    expect(outcome.status).toBe('completed');
    // a trainer and a chain per epoch, and still every tensor freed (the model by the runner)
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    // ℓ∞ PGD from a uniform start ends on the ε-ball's faces: the largest |x′ − x| of an epoch is its ε
    const schedule = [0.05, 0.1, 0.15, 0.2];
    expect([...maxPerturbation.keys()]).toEqual([1, 2, 3, 4]);
    for (const [epoch, m] of maxPerturbation) expect(m).toBeCloseTo(schedule[epoch - 1], 5);
    // and every epoch trained in full (two steps of 32), logged as usual
    const steps = await duck(
      `SELECT epoch, count(*) AS n FROM read_parquet(${lit(path.join(outcome.runDir, 'steps.parquet'))}) GROUP BY epoch ORDER BY epoch`,
    );
    expect(steps).toEqual(schedule.map((_, i) => ({ epoch: i + 1, n: 2 })));
    const b = await ranOnAutomaticBackend(outcome.runDir);
    expect(b.ran).toBe(b.automatic);
  });
});
