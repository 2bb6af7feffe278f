import * as fs from 'fs';
import * as path from 'path';
import { AUTOATTACK_STAGES } from '../../src/evaluation/autoattack';
import { EVAL_FOLDER_PATTERN } from '../../src/run/eval-folder';

/**
 * Text about the evaluation that had gone stale (issue 22, "Misleading outputs"), held to the code and to
 * docs/results.md: what AutoAttack atflow has, where `atflow eval` writes, what the quickstart's CNN does.
 */
const ROOT = path.join(__dirname, '..', '..');
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

test('docs/algorithms.md does not call AutoAttack stages that exist missing', () => {
  const md = read('docs/algorithms.md');
  expect(AUTOATTACK_STAGES).toEqual(expect.arrayContaining(['apgd-t', 'fab-t', 'square']));
  expect(md).not.toMatch(/(APGD-T|FAB-T|Square)[^.]*\b(are|is) missing/);
  expect(md).toContain('src/evaluation/autoattack.ts');
});

test("docs/autoattack.md gives `atflow eval`'s folder name as the code derives it", () => {
  expect(read('docs/autoattack.md')).toContain(`\`<name>\` is \`${EVAL_FOLDER_PATTERN}\``);
});

test("config/quickstart.json's description agrees with docs/results.md (i): at ε = 0.1 the small CNN does not give the contrast", () => {
  const results = read('docs/results.md');
  expect(results).toMatch(/## \(i\) Random labels: TRADES memorizes; PGD-AT's failure depends on ε/);
  const { description } = JSON.parse(read('config/quickstart.json')) as { description: string };
  expect(description).not.toMatch(/small CNN gives the same contrast/);
  expect(description).toMatch(/small CNN .*does not give this contrast at ε = 0\.1.*ε = 0\.3.*docs\/results\.md \(i\)/);
});
