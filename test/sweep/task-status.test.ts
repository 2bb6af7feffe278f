import * as fs from 'fs';
import * as path from 'path';
import { materialiseSweep } from '../../src/sweep/expand';
import { readManifest } from '../../src/sweep/manifest';
import { parseSweepSpec } from '../../src/sweep/sweep-spec';
import { newTaskStatus, readSweepStatus, writeTaskStatus } from '../../src/sweep/task-status';
import { loadRuns } from '../../src/config/spec';
import { tempDir } from './helpers';

describe('readSweepStatus', () => {
  test('task records win; without one a point is completed when its run has _SUCCESS, else pending', () => {
    const dir = tempDir();
    const spec = parseSweepSpec({ base: { epochs: 1, model: { name: 'mlp' } }, axes: { seed: [1, 2, 3] } }, path.join(dir, 's.json'));
    const { manifestPath } = materialiseSweep(spec, path.join(dir, 'runs'));
    const manifest = readManifest(manifestPath);
    // Point 0 finished without a task record (the local executor, or `atflow run` by hand).
    const run0 = path.join(manifest.outDir, loadRuns(manifest.runs[0].configPath)[0].runId);
    fs.mkdirSync(run0, { recursive: true });
    fs.writeFileSync(path.join(run0, '_SUCCESS'), '');
    // Point 1 failed in an array task.
    writeTaskStatus(path.dirname(manifestPath), { ...newTaskStatus(1, { SLURM_JOB_ID: '9' }), state: 'failed', error: 'boom' });
    const points = readSweepStatus(manifest);
    expect(points.map((p) => p.state)).toEqual(['completed', 'failed', 'pending']);
    expect(points[1].status).toMatchObject({ attempt: 1, error: 'boom', scheduler: { kind: 'slurm', jobId: '9' } });
    expect(points[0].status).toBeUndefined();
  });
});
