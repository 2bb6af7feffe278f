import { detectGpus, parseNvidiaSmiList } from '../../src/sweep/gpus';

const twoGpus = [
  'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1a2b3c4d-0000-1111-2222-333344445555)',
  'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-5e6f7a8b-0000-1111-2222-333344445555)',
  '',
].join('\n');

const withMig = [
  'GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaaaaaa-0000-1111-2222-333344445555)',
  '  MIG 3g.20gb     Device  0: (UUID: MIG-11111111-2222-3333-4444-555555555555)',
  '  MIG 3g.20gb     Device  1: (UUID: MIG-66666666-7777-8888-9999-000000000000)',
  'GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbbbbbb-0000-1111-2222-333344445555)',
].join('\n');

describe('detectGpus', () => {
  test('nvidia-smi -L: one id per GPU', () => {
    expect(detectGpus({}, () => twoGpus)).toEqual(['0', '1']);
  });

  test('MIG instances replace their parent GPU, by UUID', () => {
    expect(parseNvidiaSmiList(withMig)).toEqual([
      'MIG-11111111-2222-3333-4444-555555555555',
      'MIG-66666666-7777-8888-9999-000000000000',
      '1',
    ]);
  });

  test('no nvidia-smi (or no driver): no GPUs', () => {
    expect(detectGpus({}, () => undefined)).toEqual([]);
  });

  test('CUDA_VISIBLE_DEVICES wins over nvidia-smi, including an empty or -1 value (no GPU)', () => {
    const smi = () => twoGpus;
    expect(detectGpus({ CUDA_VISIBLE_DEVICES: '2, 3' }, smi)).toEqual(['2', '3']);
    expect(detectGpus({ CUDA_VISIBLE_DEVICES: 'GPU-1a2b3c4d' }, smi)).toEqual(['GPU-1a2b3c4d']);
    expect(detectGpus({ CUDA_VISIBLE_DEVICES: '' }, smi)).toEqual([]);
    expect(detectGpus({ CUDA_VISIBLE_DEVICES: '-1' }, smi)).toEqual([]);
    // CUDA ignores everything after the first invalid id.
    expect(detectGpus({ CUDA_VISIBLE_DEVICES: '0,-1,1' }, smi)).toEqual(['0']);
  });
});
