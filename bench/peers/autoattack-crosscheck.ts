/**
 * atflow's AutoAttack ensemble against the reference (fra31/auto-attack) on more digits than CI uses.
 *   python3 bench/peers/autoattack_reference.py --aa AA_CHECKOUT --mode compare --out /tmp/aa --n 500 --budget standard
 *   npx ts-node bench/peers/autoattack-crosscheck.ts /tmp/aa/reference.json [backend]
 * Prints the robust accuracy after each stage for both and the difference in percentage points.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/backend/select';
import { createModel, loadWeights } from '../../src/models';
import { autoAttackBatch } from '../../src/evaluation/autoattack';
import { threatModel } from '../../src/evaluation/threat-model';

interface Reference {
  model: { name: string; inputShape: [number, number, number]; numClasses: number };
  x_bytes: number[];
  y: number[];
  ensemble: {
    norm: 'linf' | 'l2';
    eps: number;
    budget: { apgd_steps: number; targets: number; fab_steps: number; square_queries: number };
    accuracy: Record<string, number>;
    seconds: Record<string, number>;
  }[];
}

async function main(): Promise<void> {
  const ref = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as Reference;
  const backend = await initBackend((process.argv[3] as 'tensorflow' | 'wasm' | 'cpu' | undefined) ?? 'auto');
  const model = createModel(ref.model.name, { numClasses: ref.model.numClasses, inputShape: ref.model.inputShape, seed: 0 });
  loadWeights(model, path.join(__dirname, '..', '..', 'test', 'algorithms', 'attacks', 'fixtures', 'autoattack-ci.safetensors'));
  const [H, W, C] = ref.model.inputShape;
  const n = ref.y.length;
  for (const e of ref.ensemble) {
    const x = tf.tensor4d(
      Float32Array.from(ref.x_bytes, (b) => b / 255),
      [n, H, W, C],
    );
    const y = tf.tensor1d(ref.y, 'int32');
    const times: Record<string, number> = {};
    const r = autoAttackBatch(
      model,
      x,
      y,
      0,
      {
        threat: threatModel({ eps: e.eps, norm: e.norm }),
        attacks: 'standard',
        budget: {
          apgdSteps: e.budget.apgd_steps,
          targets: e.budget.targets,
          fabSteps: e.budget.fab_steps,
          squareQueries: e.budget.square_queries,
        },
      },
      (e) => {
        if (e.phase === 'end') times[e.stage] = e.seconds;
      },
    );
    const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / n;
    const ours: Record<string, number> = { clean: mean(Array.from(r.cleanPredicted, (p, i) => (p === ref.y[i] ? 1 : 0))) };
    for (const s of r.stages) ours[s.stage] = mean(s.robust);
    process.stdout.write(`${e.norm} ε=${e.eps}, n=${n}, budget ${JSON.stringify(e.budget)}, atflow on ${backend.name}\n`);
    process.stdout.write('stage      reference  atflow   diff (pp)  seconds ref/atflow\n');
    for (const k of Object.keys(e.accuracy)) {
      const d = 100 * (ours[k] - e.accuracy[k]);
      process.stdout.write(
        `${k.padEnd(10)} ${(100 * e.accuracy[k]).toFixed(2).padStart(8)}  ${(100 * ours[k]).toFixed(2).padStart(7)}  ${d.toFixed(2).padStart(8)}  ${(e.seconds[k] ?? 0).toFixed(1)}/${(times[k] ?? 0).toFixed(1)}\n`,
      );
    }
    tf.dispose([x, y]);
  }
  model.dispose();
}

main().catch((e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
