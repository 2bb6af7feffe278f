import * as tf from '@tensorflow/tfjs';
import { initBackend, availableBackends } from '../../src/backend/select';
import { AtflowError } from '../../src/core/errors';

describe('backend selection', () => {
  it('initialises cpu and wasm on request and reports them', async () => {
    for (const name of ['cpu', 'wasm'] as const) {
      const info = await initBackend(name);
      expect(info.name).toBe(name);
      expect(tf.getBackend()).toBe(name);
      expect(info.threads).toBeGreaterThanOrEqual(1);
      expect(info.tfjsVersion).toBe(tf.version.tfjs);
    }
  });

  it('rejects an unknown backend name, naming the allowed ones', async () => {
    await expect(initBackend('gpu' as any)).rejects.toThrow(/unknown backend 'gpu'.*tensorflow, wasm, cpu/);
  });

  it('says how to get tensorflow when it is not built', async () => {
    if (availableBackends().includes('tensorflow')) {
      expect((await initBackend('tensorflow')).name).toBe('tensorflow');
    } else {
      await expect(initBackend('tensorflow')).rejects.toThrow(AtflowError);
      await expect(initBackend('tensorflow')).rejects.toThrow(/npx atflow setup-tensorflow/);
    }
  });
});
