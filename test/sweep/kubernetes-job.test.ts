import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import YAML from 'yaml';
import { runSweep } from '../../src/sweep/run-sweep';
import { tempDir, writeJson } from './helpers';

/**
 * The Indexed Job that `atflow sweep --executor array` writes, checked against the Kubernetes API's schema
 * for batch/v1 Job (kubernetes-models: validators generated from the published OpenAPI spec; run in a child
 * process because the package is ESM-only), plus the cross-field rules the API server enforces on top.
 */
const VALIDATOR = path.join(__dirname, 'fixtures', 'validate-k8s-job.mjs');

function validate(file: string): { ok: boolean; errors?: string[] } {
  const r = spawnSync(process.execPath, [VALIDATOR, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`validator crashed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function writeJob(executor: Record<string, unknown>): Promise<{ file: string; job: any; manifest: string }> {
  const dir = tempDir();
  const sweep = writeJson(path.join(dir, 'noise.json'), {
    base: { seed: 0 },
    axes: { 'trainer.name': ['pgd-at', 'trades'], seed: [1, 2] },
    executor: { kind: 'array', ...executor },
  });
  const r = await runSweep(sweep, { out: path.join(dir, 'runs'), cwd: dir, onStatus: () => undefined });
  if (r.kind !== 'array') throw new Error('expected the array executor');
  return { file: r.files.kubernetesPath, job: YAML.parse(fs.readFileSync(r.files.kubernetesPath, 'utf8')), manifest: r.files.manifestPath };
}

describe('Kubernetes Indexed Job manifest', () => {
  test.each([
    ['defaults', {}],
    [
      'GPUs, CPUs, memory, a PVC, a namespace, throttled',
      {
        parallelism: 2,
        resources: { gpus: 1, cpus: 4, memoryGiB: 12 },
        kubernetes: { image: 'ghcr.io/lab/atflow:0.1', workdir: '/mnt/work', pvc: 'lab-runs', namespace: 'ml', retriesPerIndex: 0 },
      },
    ],
  ])('%s: passes the batch/v1 Job schema and the API server cross-field rules', async (_name, executor) => {
    const { file, job } = await writeJob(executor);
    expect(validate(file)).toEqual({ ok: true });

    const spec = job.spec;
    const pod = spec.template.spec;
    const [container] = pod.containers;
    // Indexed: one completion per sweep point, each index retried on its own (backoffLimitPerIndex needs
    // completionMode Indexed and restartPolicy Never, and replaces the job-wide backoffLimit).
    expect(spec.completionMode).toBe('Indexed');
    expect(spec.completions).toBe(4);
    expect(spec.parallelism).toBeLessThanOrEqual(spec.completions);
    expect(Number.isInteger(spec.backoffLimitPerIndex) && spec.backoffLimitPerIndex >= 0).toBe(true);
    expect(pod.restartPolicy).toBe('Never');
    // A resource request per task, never above its limit.
    expect(Object.keys(container.resources.requests)).toContain('cpu');
    for (const [k, v] of Object.entries(container.resources.requests)) expect(container.resources.limits[k]).toEqual(v);
    // wasm's data-parallel workers follow the CPU request, not the node's cores the container sees
    expect(container.env).toEqual([{ name: 'ATFLOW_CORES', value: String(container.resources.requests.cpu) }]);
    // The runs tree: a volume from a claim, mounted at the working directory the manifest path is relative to.
    expect(pod.volumes).toHaveLength(1);
    expect(pod.volumes[0].persistentVolumeClaim.claimName).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(container.volumeMounts).toEqual([{ name: pod.volumes[0].name, mountPath: container.workingDir }]);
    expect(job.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(container.command.slice(-2)).toEqual(['sweep-worker', 'runs/sweeps/noise/manifest.json']);
  });

  test('the validator is not vacuous: a wrong type or enum value is rejected, naming the field', async () => {
    const { file, job } = await writeJob({});
    const broken = path.join(path.dirname(file), 'broken.yaml');
    fs.writeFileSync(broken, YAML.stringify({ ...job, spec: { ...job.spec, completions: '4' } }));
    expect(validate(broken)).toMatchObject({
      ok: false,
      errors: expect.arrayContaining([expect.stringContaining('/spec/completions must be integer')]),
    });
    fs.writeFileSync(broken, YAML.stringify({ ...job, spec: { ...job.spec, completionMode: 'indexed' } }));
    expect(validate(broken)).toMatchObject({
      ok: false,
      errors: expect.arrayContaining([expect.stringContaining('/spec/completionMode')]),
    });
    fs.writeFileSync(
      broken,
      YAML.stringify({ ...job, spec: { ...job.spec, template: { spec: { ...job.spec.template.spec, containers: [{ image: 'x' }] } } } }),
    );
    expect(validate(broken)).toMatchObject({
      ok: false,
      errors: expect.arrayContaining([expect.stringContaining('containers/0 must have required property name')]),
    });
  });
});
