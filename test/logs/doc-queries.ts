import * as fs from 'fs';
import * as path from 'path';

/**
 * The SQL blocks of docs/queries.md exactly as shipped, by name: those after `<!-- query: name -->`, or
 * with marker 'aa-query' those of the AutoAttack section (they need an `atflow eval` folder).
 */
export function docQueries(marker: 'query' | 'aa-query' = 'query'): Record<string, string> {
  const md = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'queries.md'), 'utf8');
  const out: Record<string, string> = {};
  for (const m of md.matchAll(new RegExp(`<!-- ${marker}: (\\w+) -->\\s*\`\`\`sql\\n([\\s\\S]*?)\`\`\``, 'g'))) out[m[1]] = m[2];
  return out;
}
