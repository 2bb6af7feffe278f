import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  hasBuiltAddon,
  lostTensorflowSetup,
  readSetupRecord,
  removeSetupRecord,
  tensorflowPackageDir,
  tensorflowProject,
  writeSetupRecord,
} from '../../src/backend/tensorflow-setup';

/**
 * The record `atflow setup-tensorflow` leaves in the cache, and the start-up sentence it gives when the build
 * it records is gone. (The whole story, in a consumer project with the real build, npm install and the CLI,
 * is test/package/npm-package.test.ts.)
 */
describe('the tensorflow setup record', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-tf-setup-'));
  const env = { ...process.env, ATFLOW_CACHE_DIR: cache };
  afterAll(() => fs.rmSync(cache, { recursive: true, force: true }));

  it('finds the project that holds the @tensorflow/tfjs atflow loads: this checkout', () => {
    expect(tensorflowProject()).toBe(fs.realpathSync(path.join(__dirname, '..', '..')));
  });

  it('says nothing without a record, and names the project, the package and the command to run when the recorded build is gone', () => {
    const project = tensorflowProject()!;
    expect(lostTensorflowSetup(env)).toBeNull();
    // tfjs-node-gpu is never built on this CPU machine: a record for it is a record of a build that is gone
    expect(hasBuiltAddon(tensorflowPackageDir(project, '@tensorflow/tfjs-node-gpu'))).toBe(false);
    const record = writeSetupRecord(project, '@tensorflow/tfjs-node-gpu', env);
    expect(readSetupRecord(project, env)).toEqual(record);
    expect(fs.readdirSync(path.join(cache, 'tensorflow', 'projects'))).toHaveLength(1);
    const said = lostTensorflowSetup(env)!;
    expect(said).toContain(`built in ${project} on ${record.builtAt.slice(0, 10)} (@tensorflow/tfjs-node-gpu) is gone`);
    expect(said).toContain('`npx atflow setup-tensorflow --gpu` builds it again');
    // another project's record is not this one's
    expect(readSetupRecord(path.join(project, 'elsewhere'), env)).toBeNull();
    removeSetupRecord(project, env);
    expect(lostTensorflowSetup(env)).toBeNull();
  });
});
