import { coresPerProcess, dataParallelWorkers, startRunTraining } from '../../../src/run/data-parallel';
import { initBackend } from '../../../src/backend/select';
import { createModel } from '../../../src/models';
import { Sgd } from '../../../src/algorithms/optim/sgd';
import { createTrainer } from '../../../src/config/builtins';

describe('dataParallelWorkers (ATFLOW_WORKERS)', () => {
  it('unset: one worker per core on wasm (the random starts no longer depend on the split), 1 elsewhere', () => {
    expect(dataParallelWorkers('wasm', {}, 2).workers).toBe(2);
    expect(dataParallelWorkers('wasm', {}, 1).workers).toBe(1);
    expect(dataParallelWorkers('tensorflow', {}, 8).workers).toBe(1);
    expect(dataParallelWorkers('cpu', {}, 4).workers).toBe(1);
  });

  it("a parent's share of the cores (ATFLOW_CORES) shapes only the automatic count: tensorflow children of a sweep are not refused", () => {
    // the bug: `atflow sweep --backend tensorflow` on 2 cores gave each child ATFLOW_WORKERS=2, which tensorflow refuses
    expect(dataParallelWorkers('tensorflow', { ATFLOW_CORES: '2' }).workers).toBe(1);
    expect(dataParallelWorkers('wasm', { ATFLOW_CORES: '1' }).workers).toBe(1);
    expect(dataParallelWorkers('wasm', { ATFLOW_CORES: '3' }).workers).toBe(3);
    expect(dataParallelWorkers('wasm', { ATFLOW_CORES: '1' }, undefined, 2).workers).toBe(2);
    expect(() => dataParallelWorkers('wasm', { ATFLOW_CORES: 'half' })).toThrow(/ATFLOW_CORES must be an integer ≥ 1.*'half'/);
  });

  it('concurrent processes share the cores: max(1, floor(cores / processes))', () => {
    expect(coresPerProcess(2, 2)).toBe(1);
    expect(coresPerProcess(2, 8)).toBe(4);
    expect(coresPerProcess(3, 8)).toBe(2);
    expect(coresPerProcess(4, 2)).toBe(1);
    expect(coresPerProcess(1, 16)).toBe(16);
  });

  it('auto: one worker per core on wasm only', () => {
    expect(dataParallelWorkers('wasm', { ATFLOW_WORKERS: 'auto' }, 2).workers).toBe(2);
    expect(dataParallelWorkers('wasm', { ATFLOW_WORKERS: 'auto' }, 1).workers).toBe(1);
    expect(dataParallelWorkers('cpu', { ATFLOW_WORKERS: 'auto' }, 4).workers).toBe(1);
    expect(dataParallelWorkers('tensorflow', { ATFLOW_WORKERS: 'auto' }, 4).workers).toBe(1);
  });

  it("auto keeps a resumed run on its checkpoint's count (the cores a process sees may differ on resume); an explicit N does not", () => {
    expect(dataParallelWorkers('wasm', {}, 1, 2).workers).toBe(2);
    expect(dataParallelWorkers('wasm', { ATFLOW_WORKERS: 'auto' }, 2, 1).workers).toBe(1);
    expect(dataParallelWorkers('wasm', { ATFLOW_WORKERS: '1' }, 2, 2).workers).toBe(1);
    // a wasm checkpoint with workers resumed on tensorflow: the automatic single thread (the runner then refuses the mismatch)
    expect(dataParallelWorkers('tensorflow', {}, 2, 2).workers).toBe(1);
  });

  it('N forces N; bad values and N > 1 on tensorflow are errors naming the variable', () => {
    expect(dataParallelWorkers('wasm', { ATFLOW_WORKERS: '3' }, 2).workers).toBe(3);
    expect(dataParallelWorkers('cpu', { ATFLOW_WORKERS: '2' }, 2).workers).toBe(2);
    expect(dataParallelWorkers('tensorflow', { ATFLOW_WORKERS: '1' }, 2).workers).toBe(1);
    expect(() => dataParallelWorkers('wasm', { ATFLOW_WORKERS: '0' }, 2)).toThrow(
      /ATFLOW_WORKERS must be 'auto' or an integer ≥ 1, got '0'/,
    );
    expect(() => dataParallelWorkers('wasm', { ATFLOW_WORKERS: 'two' }, 2)).toThrow(/ATFLOW_WORKERS/);
    expect(() => dataParallelWorkers('tensorflow', { ATFLOW_WORKERS: '2' }, 2)).toThrow(/tensorflow backend already uses every core/);
  });
});

describe('startRunTraining', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('starts a pool of the requested size on wasm and closes it; the single-thread chain otherwise', async () => {
    const model = createModel('cnn-small', { numClasses: 10, seed: 1 });
    const trainer = createTrainer('standard', {});
    const optimizer = new Sgd(model.parameters);
    const common = { backend: 'wasm' as const, model, trainer, trainerOptions: {}, te: null, optimizer, lr: () => 0.1, seed: 1 };
    const single = await startRunTraining({ ...common, env: { ATFLOW_WORKERS: '1' } });
    expect(single.workers).toBe(1);
    await single.close();
    const parallel = await startRunTraining({ ...common, env: { ATFLOW_WORKERS: '2' } });
    expect(parallel.workers).toBe(2);
    await parallel.close();
    optimizer.dispose();
    model.dispose();
  });
});
