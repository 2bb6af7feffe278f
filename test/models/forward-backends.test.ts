import { cpuVsWasm } from './backend-agreement';

// The same model (same seed) on cpu and wasm: eval logits, train-mode logits, BN running statistics
// after that step, and eval logits with the updated statistics agree to 1e-4.
describe('forward pass, cpu vs wasm', () => {
  // wrn-16-1 runs both WRN block paths (16 → 16 equalInOut blocks, and the activated 1×1 shortcut)
  const cases: [string, [number, number, number], number, boolean, boolean][] = [
    ['mlp', [28, 28, 1], 3, false, true],
    ['cnn-small', [28, 28, 1], 3, false, true],
    ['wrn-16-1', [32, 32, 3], 2, true, true],
    ['vgg16', [32, 32, 3], 1, true, false],
  ];
  it.each(cases)('%s', async (name, shape, batch, hasBatchNorm, evalAfter) => {
    const d = await cpuVsWasm(name, shape, batch, evalAfter);
    expect(d.finite).toBe(true);
    expect(d.eval).toBeLessThan(1e-4);
    expect(d.train).toBeLessThan(1e-4);
    expect(d.evalAfter).toBeLessThan(1e-4);
    expect(d.buffers).toBeLessThan(1e-4);
    expect(d.modesDiffer).toBe(hasBatchNorm);
  });
});
