import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AtflowError } from '../../src/core/errors';
import { checkName, removeEntry, removeRunFolder, RunFolder } from '../../src/store/run-folder';
import { acquireLock } from '../../src/store/run-lock';

/**
 * The run folder as the one owner of its paths (issue 23) and its confinement (issue 24 item 3 and
 * "Outside the folder"): names are names, a folder of its own that is a link is refused before anything
 * is listed or deleted through it, a damaged entry (LATEST a folder, checkpoints a file, ...) is an
 * AtflowError naming it, and cleaning removes atflow's own temp files only.
 */

let root: string;
let n = 0;
beforeAll(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-folder-'))));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A run folder with the usual entries (as a run leaves it mid-way). */
function folder(): RunFolder {
  const dir = path.join(root, `run-${n++}`);
  for (const d of [
    'checkpoints/epoch-0002',
    'examples/epoch-0001',
    'examples/epoch-0002',
    '_segments/steps',
    'arrow',
    'eval/best-standard-linf-test',
  ])
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  for (const f of [
    'spec.json',
    'checkpoints/LATEST',
    'checkpoints/epoch-0002/state.json',
    'examples/epoch-0001/part-train.parquet',
    '_segments/steps/seg-000000.parquet',
    'arrow/steps.arrows',
  ]) {
    fs.writeFileSync(path.join(dir, f), f === 'checkpoints/LATEST' ? 'epoch-0002\n' : '{}');
  }
  return new RunFolder(dir);
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AtflowError);
    return (e as Error).message;
  }
  throw new Error('expected an AtflowError');
}

describe('names are names', () => {
  it.each(['../../../x', '../x', 'a/b', '/etc/passwd', '.hidden', '..', '', 'a\\b'])("'%s' is refused as an evaluation name", (name) => {
    expect(errorOf(() => new RunFolder('/runs/r').evalDir(name))).toMatch(/evaluation name '.*' is not a plain name/);
  });
  it('the default names are plain names and stay inside eval/', () => {
    for (const name of ['best-standard-linf-test', 'final-apgd-ce+apgd-t-l2-train', 'epoch-3-rand-linf-test']) {
      expect(path.dirname(new RunFolder('/runs/r').evalDir(name))).toBe(path.join('/runs/r', 'eval'));
    }
    expect(checkName('model_v1.2', 'x')).toBe('model_v1.2');
  });
});

describe('a damaged folder is a named error (checkShape)', () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      'LATEST is a folder',
      (d) => (fs.rmSync(path.join(d, 'checkpoints/LATEST')), fs.mkdirSync(path.join(d, 'checkpoints/LATEST'))),
      /checkpoints\/LATEST is a folder, expected a file/,
    ],
    [
      'checkpoints is a file',
      (d) => (fs.rmSync(path.join(d, 'checkpoints'), { recursive: true }), fs.writeFileSync(path.join(d, 'checkpoints'), '')),
      /\/checkpoints is a file, expected a folder/,
    ],
    [
      '_segments/events is a file',
      (d) => fs.writeFileSync(path.join(d, '_segments/events'), ''),
      /_segments\/events is a file, expected a folder/,
    ],
    [
      'examples/epoch-0002 is a file',
      (d) => (
        fs.rmSync(path.join(d, 'examples/epoch-0002'), { recursive: true }),
        fs.writeFileSync(path.join(d, 'examples/epoch-0002'), '')
      ),
      /examples\/epoch-0002 is a file, expected a folder/,
    ],
    [
      "an earlier version's examples/epoch=0003 is a file",
      (d) => fs.writeFileSync(path.join(d, 'examples/epoch=0003'), ''),
      /examples\/epoch=0003 is a file, expected a folder/,
    ],
    [
      'spec.json is a folder',
      (d) => (fs.rmSync(path.join(d, 'spec.json')), fs.mkdirSync(path.join(d, 'spec.json'))),
      /spec\.json is a folder, expected a file/,
    ],
    [
      'a checkpoint is a file',
      (d) => fs.writeFileSync(path.join(d, 'checkpoints/epoch-0001'), ''),
      /checkpoints\/epoch-0001 is a file, expected a folder/,
    ],
  ];
  it.each(cases)('%s', (_name, damage, message) => {
    const f = folder();
    damage(f.dir);
    expect(errorOf(() => f.checkShape())).toMatch(message);
    expect(errorOf(() => f.checkShape())).toMatch(/the run folder is damaged/);
  });
});

describe('links inside a run folder are refused before anything goes through them', () => {
  const linked: [string, string][] = [
    ['examples', 'examples'],
    ['checkpoints', 'checkpoints'],
    ['an epoch partition', 'examples/epoch-0002'],
    ['a table segment folder', '_segments/steps'],
    ['the Arrow folder', 'arrow'],
    ['an eval folder', 'eval/best-standard-linf-test'],
    ['a checkpoint', 'checkpoints/epoch-0002'],
  ];
  it.each(linked)('%s as a link: refused, and the files it points at are untouched', (_name, rel) => {
    const f = folder();
    const elsewhere = path.join(root, `elsewhere-${n++}`);
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'mydata.txt'), 'mine');
    fs.writeFileSync(path.join(elsewhere, '.x.123.4.tmp'), 'mine too');
    fs.mkdirSync(path.join(elsewhere, 'epoch=0009'));
    removeEntry(path.join(f.dir, rel));
    fs.symlinkSync(elsewhere, path.join(f.dir, rel));
    expect(errorOf(() => f.checkShape())).toMatch(
      new RegExp(
        `${rel.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is a symbolic link \\(to .*elsewhere-\\d+\\); atflow neither writes nor deletes through links`,
      ),
    );
    expect(fs.readdirSync(elsewhere).sort()).toEqual(['.x.123.4.tmp', 'epoch=0009', 'mydata.txt']);
  });

  it('removeEntry removes a link, never what it points at', () => {
    const f = folder();
    const elsewhere = path.join(root, `elsewhere-${n++}`);
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'mydata.txt'), 'mine');
    fs.symlinkSync(elsewhere, path.join(f.dir, 'examples/epoch-0001/link'));
    removeEntry(path.join(f.dir, 'examples'));
    expect(fs.existsSync(path.join(f.dir, 'examples'))).toBe(false);
    expect(fs.readFileSync(path.join(elsewhere, 'mydata.txt'), 'utf8')).toBe('mine');
  });
});

describe('cleaning removes atflow temp files only', () => {
  it('dead writers\' temp files and folders go (names of earlier versions too); a user\'s files with "tmp" in the name stay', () => {
    const f = folder();
    const ours = [
      '.spec.json.4242.1.tmp',
      'checkpoints/.tmp-epoch-0003-4242',
      'checkpoints/.LATEST.4242.7.tmp',
      '_segments/steps/.seg-000001.parquet.4242.3.tmp',
      'examples/epoch-0002/.part-train.parquet.4242.2.tmp',
      '.part-eval.parquet.4242.8.tmp',
      'arrow/.steps.arrows.4242.5.tmp',
      'arrow/.examples.arrows.4242.tmp',
      'checkpoints/LATEST.tmp-4242',
      'checkpoints/.best.safetensors.tmp-4242-1700000000000',
    ];
    const theirs = [
      'my.tmp-notes.txt',
      'checkpoints/my.tmp-notes.txt',
      'checkpoints/.notes.tmp',
      'examples/epoch-0002/notes.tmp',
      'eval/best-standard-linf-test/.summary.json.4242.1.tmp',
    ];
    for (const p of [...ours, ...theirs]) {
      if (p.includes('.tmp-epoch-')) fs.mkdirSync(path.join(f.dir, p));
      else fs.writeFileSync(path.join(f.dir, p), '');
    }
    f.removeTemp();
    for (const p of ours) expect([p, fs.existsSync(path.join(f.dir, p))]).toEqual([p, false]);
    for (const p of theirs) expect([p, fs.existsSync(path.join(f.dir, p))]).toEqual([p, true]);
  });
});

describe('paths come from one place', () => {
  it('the layout of docs/schema.md', () => {
    const f = new RunFolder('/r');
    expect(f.examplePartFile(7, 'eval-test')).toBe('/r/examples/epoch-0007/part-eval-test.parquet');
    expect(f.examplePartFile(7, 'train', 2)).toBe('/r/examples/epoch-0007/part-train-2.parquet');
    expect(f.segmentFile('steps', 3)).toBe('/r/_segments/steps/seg-000003.parquet');
    expect(f.tableFile('epochs')).toBe('/r/epochs.parquet');
    expect(f.file('success')).toBe('/r/_SUCCESS');
    expect(f.arrowFile('examples')).toBe('/r/arrow/examples.arrows');
    expect(f.checkpointsDir).toBe('/r/checkpoints');
    expect(f.checkpointDir(12)).toBe('/r/checkpoints/epoch-0012');
    expect(f.latestFile).toBe('/r/checkpoints/LATEST');
    expect(f.evalDir('final-standard-linf-eps0.3-test-n8')).toBe('/r/eval/final-standard-linf-eps0.3-test-n8');
  });

  it("examples folders of an earlier version (epoch=NNNN) are listed with today's (epoch-NNNN)", () => {
    const f = folder();
    fs.mkdirSync(path.join(f.dir, 'examples/epoch=0003'));
    fs.writeFileSync(path.join(f.dir, 'examples/epoch=0003/part-eval.parquet'), '');
    fs.mkdirSync(path.join(f.dir, 'examples/epoch_0004'));
    expect(f.exampleEpochs()).toEqual([1, 2, 3]);
    expect(f.exampleParts(3, 'eval')).toEqual([path.join(f.dir, 'examples/epoch=0003/part-eval.parquet')]);
    f.removeExampleEpochsAfter(1);
    expect(fs.readdirSync(path.join(f.dir, 'examples')).sort()).toEqual(['epoch-0001', 'epoch_0004']);
  });
});

describe('--rerun removes a run folder (removeRunFolder)', () => {
  it('not while another writer holds its lock: refused naming the holder, nothing removed', () => {
    const f = folder();
    const lock = acquireLock(f.dir, { command: 'atflow run' });
    try {
      expect(errorOf(() => removeRunFolder(f.dir))).toMatch(
        new RegExp(
          `another atflow process is writing this folder: process ${process.pid} on .* is running; --rerun removes it only once that process has ended`,
        ),
      );
      expect(fs.existsSync(path.join(f.dir, 'checkpoints/epoch-0002/state.json'))).toBe(true);
    } finally {
      lock.release();
    }
    removeRunFolder(f.dir);
    expect(fs.existsSync(f.dir)).toBe(false);
    expect(fs.readdirSync(path.dirname(f.dir)).filter((e) => e.includes('.removing-'))).toEqual([]);
  });

  it('a run folder that is a link keeps its link; what it points at is emptied, and nothing through a link inside it', () => {
    const f = folder();
    const scratch = path.join(root, `scratch-${n++}`);
    fs.renameSync(f.dir, scratch);
    fs.symlinkSync(scratch, f.dir);
    const elsewhere = path.join(root, `elsewhere-${n++}`);
    fs.mkdirSync(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'mydata.txt'), 'mine');
    fs.symlinkSync(elsewhere, path.join(scratch, 'examples/epoch-0001/link'));
    removeRunFolder(f.dir);
    expect(fs.lstatSync(f.dir).isSymbolicLink()).toBe(true);
    expect(fs.readdirSync(scratch)).toEqual([]);
    expect(fs.readFileSync(path.join(elsewhere, 'mydata.txt'), 'utf8')).toBe('mine');
  });
});
