import type { Command } from 'commander';
import { writeReport } from '../../sinks/report';

/** `atflow report <runDir...> [--out file]`: a self-contained report.html with SVG plots. */
export function register(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report (inline SVG plots) for one or several run folders; several runs overlay')
    .argument('<runDirs...>', 'run folders (runs/<run_id>)')
    .option('-o, --out <file>', 'output file (default: <runDir>/report.html for one run, ./report.html for several)')
    .action((runDirs: string[], opts: { out?: string }) => {
      const file = writeReport(runDirs, opts.out);
      process.stdout.write(`${file}\n`);
    });
}
