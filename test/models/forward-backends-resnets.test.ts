import { cpuVsWasm } from './backend-agreement';

// The real ResNet-18 and PreAct-ResNet-18 at batch 1 (the cpu backend is slow; see forward-backends.test.ts).
// Smaller inputs that the reference head accepts (25..56 pixels per side) keep the cpu time down, and the odd
// sizes exercise PyTorch's symmetric padding of the stride-2 convs (25 → 13 → 7 → 4).
describe('forward pass, cpu vs wasm (ResNets)', () => {
  const cases: [string, [number, number, number]][] = [
    ['resnet18', [28, 28, 3]],
    ['preact-resnet18', [25, 25, 3]],
  ];
  it.each(cases)('%s %p', async (name, shape) => {
    const d = await cpuVsWasm(name, shape, 1, false);
    expect(d.finite).toBe(true);
    expect(d.eval).toBeLessThan(1e-4);
    expect(d.train).toBeLessThan(1e-4);
    expect(d.buffers).toBeLessThan(1e-4);
    expect(d.modesDiffer).toBe(true);
  });
});
