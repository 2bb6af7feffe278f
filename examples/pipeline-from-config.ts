/**
 * The same run as examples/pipeline-in-code.ts, declared as a config: the quickstart's TRADES
 * variant, with every operator picked by name. Run it with:
 *
 *   npx tsx examples/pipeline-from-config.ts [outDir]
 *
 * An ablation is a one-word change: `--set trainer.name=pgd-at` on the CLI, or `trainer: 'pgd-at'` here.
 */
import * as path from 'path';
import { loadRuns, executeRun, defaultRegistry } from '../src';
import { parquetRunSink } from '../src/logs/sinks';

export async function runFromConfig(outDir: string, sets: string[]): Promise<string> {
  const config = path.join(__dirname, '..', 'config', 'quickstart.json');
  const [run] = loadRuns(config, ['variants=null', 'trainer.name=trades', 'trainer.beta=6', ...sets]);
  const outcome = await executeRun(run, { outDir, registry: defaultRegistry(), sinks: () => [parquetRunSink()] });
  return outcome.runDir;
}

if (require.main === module) {
  runFromConfig(process.argv[2] ?? 'runs', ['epochs=5']).then((dir) => console.log(`logs in ${dir}`));
}
