import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/**
 * Issue 11: the README linked ../shared/PAPER.md, which a clone does not have. The algorithm reference
 * is docs/algorithms.md; every "algorithms.md §N" cited in code, configs and docs must name a section
 * (or a numbered item of one) that exists there, and the docs' relative links must resolve.
 */

const ROOT = path.join(__dirname, '..', '..');
const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n')
  .filter((f) => /\.(ts|js|md|json|py|sh)$/.test(f) && fs.existsSync(path.join(ROOT, f)));
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');
const reference = read('docs/algorithms.md');

/** Section "N" or "N.M" → its text (up to the next heading of the same or a higher level). */
function sections(md: string): Map<string, string> {
  const out = new Map<string, string>();
  const heads = [...md.matchAll(/^(#{2,3}) (\d+(?:\.\d+)?)\.? /gm)];
  heads.forEach((h, i) => {
    const level = h[1].length;
    const next = heads.slice(i + 1).find((n) => n[1].length <= level);
    out.set(h[2], md.slice(h.index!, next ? next.index : md.length));
  });
  return out;
}

describe('the algorithm reference lives in the repository', () => {
  it('no file points at ../shared/ or PAPER.md', () => {
    const offenders = tracked.filter((f) => f !== 'test/docs/algorithm-references.test.ts' && /\.\.\/shared\/|PAPER\.md/.test(read(f)));
    expect(offenders).toEqual([]);
  });

  it('every cited docs/algorithms.md section exists', () => {
    const secs = sections(reference);
    const missing: string[] = [];
    let cited = 0;
    for (const f of tracked) {
      for (const m of read(f).matchAll(/algorithms\.md §(\d+)(?:\.(\d+))?/g)) {
        cited++;
        const [major, minor] = [m[1], m[2]];
        if (!secs.has(major)) missing.push(`${f}: §${major}`);
        else if (minor !== undefined && !secs.has(`${major}.${minor}`) && !new RegExp(`^${minor}\\. `, 'm').test(secs.get(major)!))
          missing.push(`${f}: §${major}.${minor}`);
      }
    }
    expect(missing).toEqual([]);
    expect(cited).toBeGreaterThan(100);
  });

  it('README and docs/ relative links point at files that exist', () => {
    const broken: string[] = [];
    for (const f of tracked.filter((t) => t === 'README.md' || /^docs\/.*\.md$/.test(t))) {
      for (const m of read(f).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/.test(target)) continue; // http(s), mailto
        if (!fs.existsSync(path.join(ROOT, path.dirname(f), target))) broken.push(`${f} → ${target}`);
      }
    }
    expect(broken).toEqual([]);
    expect(read('README.md')).toContain('](docs/algorithms.md)');
  });
});
