import type { Command } from 'commander';
import { AtflowError } from '../../core/errors';
import { listModels } from '../../models';

/** `atflow models [--json] [--classes 10,100]`: every registered model and its parameter count (nothing is allocated). */
export function register(program: Command): void {
  program
    .command('models')
    .description('list the models with their parameter counts (mlp / cnn-small at 28×28×1, the CIFAR models at 32×32×3)')
    .option('--json', 'print a JSON array of {name, classes, parameters}')
    .option('--classes <list>', 'comma-separated class counts', '10,100')
    .action((opts: { json?: boolean; classes: string }) => {
      const classes = opts.classes.split(',').map((s) => Number(s.trim()));
      if (classes.some((k) => !Number.isInteger(k) || k < 2)) {
        throw new AtflowError('ARGUMENT', `--classes: expected comma-separated integers ≥ 2, got '${opts.classes}'`, {
          value: opts.classes,
        });
      }
      const rows = listModels(classes);
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows.map((r) => ({ name: r.name, classes: r.classes, parameters: r.parameters }))) + '\n');
        return;
      }
      const lines = [['model', 'classes', 'parameters', 'input (H×W×C)']];
      for (const r of rows) lines.push([r.name, String(r.classes), r.parameters.toLocaleString('en-US'), r.inputShape.join('×')]);
      const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
      const text = lines.map((l) =>
        l
          .map((cell, i) => (i === 0 || i === 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
          .join('  ')
          .trimEnd(),
      );
      process.stdout.write(text.join('\n') + '\nany wrn-D-K (D = 6n+4) is accepted too, e.g. wrn-16-2\n');
    });
}
