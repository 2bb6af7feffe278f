import { execFileSync } from 'child_process';

/**
 * The GPU device ids a sweep can hand out, one per worker via CUDA_VISIBLE_DEVICES.
 *
 * CUDA_VISIBLE_DEVICES, when set, is the user's (or the scheduler's) choice and wins, even when empty
 * ("" or "-1" = no GPU). Otherwise `nvidia-smi -L` lists the devices; where a GPU is split into MIG
 * instances, those instances (by UUID, the only id CUDA accepts for them) replace the parent GPU.
 */
export function detectGpus(env: NodeJS.ProcessEnv = process.env, listDevices: () => string | undefined = nvidiaSmiList): string[] {
  const visible = env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined) {
    const ids = visible
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    // CUDA stops enumerating at the first invalid id; "-1" is the conventional "hide all GPUs".
    const firstInvalid = ids.findIndex((s) => s.startsWith('-'));
    return firstInvalid === -1 ? ids : ids.slice(0, firstInvalid);
  }
  const listing = listDevices();
  return listing === undefined ? [] : parseNvidiaSmiList(listing);
}

/** Device ids from `nvidia-smi -L` output: "0", "1", … or MIG UUIDs for partitioned GPUs. */
export function parseNvidiaSmiList(listing: string): string[] {
  const ids: string[] = [];
  let currentGpu: string | undefined;
  let currentHasMig = false;
  const flush = () => {
    if (currentGpu !== undefined && !currentHasMig) ids.push(currentGpu);
  };
  for (const line of listing.split(/\r?\n/)) {
    const gpu = /^GPU (\d+):/.exec(line);
    const mig = /^\s+MIG .*\(UUID: (MIG-[^)\s]+)\)/.exec(line);
    if (gpu) {
      flush();
      currentGpu = gpu[1];
      currentHasMig = false;
    } else if (mig) {
      ids.push(mig[1]);
      currentHasMig = true;
    }
  }
  flush();
  return ids;
}

function nvidiaSmiList(): string | undefined {
  try {
    return execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined; // no driver, no GPU: run on CPU
  }
}
