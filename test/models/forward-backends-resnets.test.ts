import { cpuVsWasm } from './backend-agreement';

// The real ResNet-18 and PreAct-ResNet-18 at batch 1 (the cpu backend is slow; see forward-backends.test.ts).
describe('forward pass, cpu vs wasm (ResNets)', () => {
  it.each(['resnet18', 'preact-resnet18'])('%s', async (name) => {
    const d = await cpuVsWasm(name, [32, 32, 3], 1, false);
    expect(d.finite).toBe(true);
    expect(d.eval).toBeLessThan(1e-4);
    expect(d.train).toBeLessThan(1e-4);
    expect(d.buffers).toBeLessThan(1e-4);
    expect(d.modesDiffer).toBe(true);
  });
});
