import type { Command } from 'commander';
import { initBackend, describeBackend, availableBackends, type BackendName } from '../../backend/select';

/** `atflow backend [--json]`: which backend atflow would use here, and which ones are available. */
export function register(program: Command): void {
  program
    .command('backend')
    .description('show the backend atflow chooses (ATFLOW_BACKEND or --backend forces one) and the available ones')
    .option('--backend <name>', 'auto | tensorflow | wasm | cpu')
    .option('--json', 'print JSON')
    .action(async (opts: { backend?: BackendName | 'auto'; json?: boolean }) => {
      const info = await initBackend(opts.backend);
      if (opts.json) process.stdout.write(JSON.stringify({ ...info, available: availableBackends() }) + '\n');
      else process.stdout.write(`${describeBackend(info)}\navailable: ${availableBackends().join(', ')}\n`);
    });
}
