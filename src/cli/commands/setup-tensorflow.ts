import { spawnSync } from 'child_process';
import type { Command } from 'commander';
import * as path from 'path';
import { hasBuiltAddon, tensorflowPackageDir, tensorflowProject, writeSetupRecord } from '../../backend/tensorflow-setup';
import { AtflowError } from '../../core/errors';

/**
 * `atflow setup-tensorflow [--gpu] [--check] [--force]`: builds the tensorflow backend into the project
 * that holds atflow's tfjs (see backend/tensorflow-setup.ts) with scripts/setup-tensorflow.sh, the one
 * owner of the build, then records it so that start-up can say when `npm ci` has deleted it.
 */
export function register(program: Command): void {
  program
    .command('setup-tensorflow')
    .description(
      'build the fast tensorflow backend (tfjs-node against a pip TensorFlow wheel) into this project; run it again after `npm ci`',
    )
    .option('--gpu', 'build @tensorflow/tfjs-node-gpu against the CUDA `tensorflow` wheel')
    .option('--check', 'only say whether it can be built here (tools present, wheel cached or reachable through pip)')
    .option('--force', 're-extract the wheel and rebuild the addon')
    .action((opts: { gpu?: boolean; check?: boolean; force?: boolean }) => {
      const project = tensorflowProject();
      if (!project) throw new AtflowError('BACKEND', 'cannot resolve @tensorflow/tfjs from atflow: is atflow installed (`npm install`)?');
      const script = path.join(__dirname, '..', '..', '..', 'scripts', 'setup-tensorflow.sh');
      const args = [
        script,
        '--project',
        project,
        ...(opts.gpu ? ['--gpu'] : []),
        ...(opts.check ? ['--check'] : []),
        ...(opts.force ? ['--force'] : []),
      ];
      const r = spawnSync('bash', args, { stdio: 'inherit' });
      if (r.error) throw new AtflowError('BACKEND', `could not run ${script} with bash: ${r.error.message}`);
      if (r.status !== 0 || opts.check) {
        process.exitCode = r.status ?? 1;
        return;
      }
      // The script exits 0 without building when no wheel is reachable (atflow then runs on wasm).
      const pkg =
        opts.gpu || process.env.TFJS_NODE_PACKAGE === '@tensorflow/tfjs-node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      if (hasBuiltAddon(tensorflowPackageDir(project, pkg))) writeSetupRecord(project, pkg);
    });
}
