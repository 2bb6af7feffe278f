import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';
import { fsyncDir, isTempName, tempPathFor, writeFileDurable, writeJsonDurable } from '../core/durable-file';
import { canonicalJson, type ResolvedRun } from '../config/spec';
import type { PluginRef } from '../config/registry';
import { isPlainObject } from '../config/dotted-path';
import { acquireLock, inspectLock, LOCK_FILE, type FolderLock, type LockState } from './run-lock';

/**
 * The run folder: the one owner of its paths, markers and file names (docs/schema.md, "The run
 * folder"), of its lock, and of the checks that make a damaged folder an error that names the damage
 * instead of a stack trace. The run, the sinks (logs/), eval, probe, report, inspect and the sweep all
 * take their paths from here.
 *
 *   <runDir>/ spec.json  summary.json  final_eval.json  report.html  _SUCCESS  .atflow.lock
 *             labels.parquet  events.parquet  epochs.parquet  steps.parquet  complexity.parquet
 *             examples/epoch-NNNN/part-<phase>[-<split>][-k].parquet   (epoch=NNNN in folders of earlier versions)
 *             _segments/<table>/seg-NNNNNN.parquet (carry.parquet)      while a run is going
 *             arrow/<table>.arrows                                       logging.arrow
 *             checkpoints/LATEST  checkpoints/epoch-NNNN/{model,state,best}.safetensors, state.json
 *             eval/<name>/{robustness.parquet, summary.json, state.jsonl}
 *             gradient_probe.parquet  gradient_probe.svg
 *
 * atflow never follows a link inside a run folder: a folder of its own that is a symbolic link is
 * refused (checkShape), so nothing is ever listed, written or deleted through one.
 */

/** The single-file tables (written by the Parquet sink). */
export type RunTable = 'events' | 'epochs' | 'steps' | 'complexity' | 'labels';

export const RUN_FILES = {
  spec: 'spec.json',
  summary: 'summary.json',
  finalEval: 'final_eval.json',
  report: 'report.html',
  success: '_SUCCESS',
  gradientProbe: 'gradient_probe.parquet',
  gradientProbeSvg: 'gradient_probe.svg',
} as const;

/** The files of an evaluation folder (`eval/<name>/`, or `<out>/eval/<name>/` of a weights file). */
export const EVAL_FILES = {
  summary: 'summary.json',
  robustness: 'robustness.parquet',
  /** A header line, then one line per finished batch: what `atflow eval --resume` reads. */
  state: 'state.jsonl',
} as const;

export const RUN_DIRS = {
  checkpoints: 'checkpoints',
  examples: 'examples',
  segments: '_segments',
  arrow: 'arrow',
  eval: 'eval',
} as const;

const TABLES: readonly RunTable[] = ['events', 'epochs', 'steps', 'complexity', 'labels'];

/** Letters, digits and `._+=-`, not starting with a dot, at most 200 characters (checkName). */
export const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._+=-]{0,199}$/;

/**
 * A name atflow puts into a path (an eval name, a table, a checkpoint): letters, digits and `._+=-`,
 * not starting with a dot. Names are names: `../x`, `a/b` and absolute paths are refused.
 */
export function checkName(name: string, what: string): string {
  if (typeof name !== 'string' || !PLAIN_NAME.test(name)) {
    throw new AtflowError(
      'ARGUMENT',
      `${what} '${name}' is not a plain name: use letters, digits and . _ + = - (no '/', no '..', not starting with a dot)`,
      { name },
    );
  }
  return name;
}

/**
 * `epoch-0007`: the examples folder of an epoch (zero-padded to 4 digits so folders sort by epoch). Not
 * Hive's `epoch=0007`: every file carries the `epoch` column itself, and a `key=value` folder makes pyarrow
 * and pandas add a second, dictionary-typed `epoch` that clashes with it (`pandas.read_parquet('examples')`
 * failed) and DuckDB a text one ('0007'). With plain folder names each reader's default call returns the
 * files' int32 `epoch`.
 */
export function exampleEpochName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`;
}

/**
 * The epoch an examples folder holds: `epoch-NNNN`, or the Hive-style `epoch=NNNN` of run folders written by
 * earlier versions (the report still reads them; resuming such a run renames them); null for anything else.
 */
export function exampleEpochOf(folder: string): number | null {
  const m = /^epoch[-=](\d+)$/.exec(folder);
  return m ? Number(m[1]) : null;
}

/** `epoch-0007`: a checkpoint's folder under checkpoints/. */
export function checkpointDirName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`;
}

/** The files of a checkpoint folder, and the file naming the last one (store/checkpoint-store.ts). */
export const CHECKPOINT_FILES = {
  model: 'model.safetensors',
  state: 'state.safetensors',
  json: 'state.json',
  best: 'best.safetensors',
  latest: 'LATEST',
} as const;

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw new AtflowError('IO', `cannot read ${p}: ${(e as Error).message}`, { path: p });
  }
}

function damaged(p: string, what: string, expected: string): AtflowError {
  return new AtflowError(
    'DATA_FILE',
    `${p} is ${what}, expected ${expected}: the run folder is damaged (restore it, or remove the folder to start the run over)`,
    { path: p },
  );
}

function linkError(p: string): AtflowError {
  const target = (() => {
    try {
      return fs.readlinkSync(p);
    } catch {
      return '?';
    }
  })();
  return new AtflowError(
    'DATA_FILE',
    `${p} is a symbolic link (to ${target}); atflow neither writes nor ` +
      `deletes through links inside a run folder: replace the link by a real ` +
      `folder or file, or put the whole run folder on that disk with --out`,
    { path: p, target },
  );
}

/** Checks that `p`, if it exists, is a real folder (or, `file`, a regular file). Returns whether it exists. */
function expectKind(p: string, kind: 'folder' | 'file', described?: string): boolean {
  const st = lstatOrNull(p);
  if (!st) return false;
  if (st.isSymbolicLink()) throw linkError(p);
  if (kind === 'folder' && !st.isDirectory()) throw damaged(p, 'a file', `a folder${described ? ` (${described})` : ''}`);
  if (kind === 'file' && !st.isFile())
    throw damaged(p, st.isDirectory() ? 'a folder' : 'not a regular file', `a file${described ? ` (${described})` : ''}`);
  return true;
}

/** Entries of a folder, sorted (a folder that vanished or is not one: none). */
function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new AtflowError('IO', `cannot list ${dir}: ${(e as Error).message}`, { path: dir });
  }
}

/** Why a folder cannot be created, in words (mkdir's own errors say ENOENT for a read-only parent). */
function whyNotWritable(dir: string): string | null {
  let p = path.dirname(path.resolve(dir));
  while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  if (!fs.statSync(p).isDirectory()) return `${p} is a file, not a folder (ENOTDIR)`;
  try {
    fs.accessSync(p, fs.constants.W_OK);
  } catch (e) {
    return `${p} is not writable (${(e as NodeJS.ErrnoException).code})`;
  }
  return null;
}

/**
 * Creates `dir` (and its parents) and checks that it can be written (EROFS shows only on a write), or
 * fails with an IO error that says why; `what` names it ("the run folder", "the evaluation folder").
 */
export function createFolder(dir: string, what = 'the folder'): void {
  const existed = fs.existsSync(dir);
  const fail = (why: string) => new AtflowError('IO', `cannot ${existed ? 'write to' : 'create'} ${what} ${dir}: ${why}`, { path: dir });
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw fail(whyNotWritable(dir) ?? (e as Error).message);
  }
  const probe = tempPathFor(path.join(dir, 'probe'));
  try {
    fs.writeFileSync(probe, '', { flag: 'wx' });
    fs.rmSync(probe, { force: true });
  } catch (e) {
    throw fail(`${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export class RunFolder {
  private lockHandle: FolderLock | null = null;

  constructor(readonly dir: string) {}

  static of(outDir: string, runId: string): RunFolder {
    return new RunFolder(path.join(outDir, checkName(runId, 'run id')));
  }

  // ---- paths ----
  file(name: keyof typeof RUN_FILES): string {
    return path.join(this.dir, RUN_FILES[name]);
  }
  get specFile(): string {
    return this.file('spec');
  }
  get checkpointsDir(): string {
    return path.join(this.dir, RUN_DIRS.checkpoints);
  }
  /** `checkpoints/epoch-NNNN/`. */
  checkpointDir(epoch: number): string {
    return path.join(this.checkpointsDir, checkpointDirName(epoch));
  }
  /** `checkpoints/LATEST`: the name of the last complete checkpoint. */
  get latestFile(): string {
    return path.join(this.checkpointsDir, CHECKPOINT_FILES.latest);
  }
  /** `<table>.parquet` (labels, and the merged events / epochs / steps / complexity). */
  tableFile(table: RunTable): string {
    return path.join(this.dir, `${table}.parquet`);
  }
  /** `_segments/<table>/`: the durable pieces of a table while the run is going. */
  segmentsDir(table?: RunTable): string {
    return table ? path.join(this.dir, RUN_DIRS.segments, table) : path.join(this.dir, RUN_DIRS.segments);
  }
  segmentFile(table: RunTable, n: number): string {
    return path.join(this.segmentsDir(table), `seg-${String(n).padStart(6, '0')}.parquet`);
  }
  /** The kept rows of a resumed table, written before its sources are removed. */
  carryFile(table: RunTable): string {
    return path.join(this.segmentsDir(table), 'carry.parquet');
  }
  /** The segments of a table, in write order. */
  segments(table: RunTable): string[] {
    const dir = this.segmentsDir(table);
    return entries(dir)
      .filter((f) => /^seg-\d+\.parquet$/.test(f))
      .map((f) => path.join(dir, f));
  }
  get examplesDir(): string {
    return path.join(this.dir, RUN_DIRS.examples);
  }
  /** `examples/epoch-NNNN/`: the one place that says where an epoch's example rows go. */
  exampleEpochDir(epoch: number): string {
    return path.join(this.examplesDir, exampleEpochName(epoch));
  }
  /** `part-<name>.parquet`, `part-<name>-<k>.parquet` for the k-th file of the same epoch and name. */
  examplePartFile(epoch: number, name: string, k = 0): string {
    return path.join(this.exampleEpochDir(epoch), k === 0 ? `part-${name}.parquet` : `part-${name}-${k}.parquet`);
  }
  /**
   * The examples folders, by epoch ascending (each checked to be a real folder): `epoch-NNNN`, and the
   * `epoch=NNNN` of earlier versions (the Parquet sink renames those when it resumes such a run).
   */
  exampleFolders(): { readonly epoch: number; readonly dir: string }[] {
    if (!expectKind(this.examplesDir, 'folder')) return [];
    const out: { epoch: number; dir: string }[] = [];
    for (const f of entries(this.examplesDir)) {
      const epoch = exampleEpochOf(f);
      if (epoch === null) continue;
      const dir = path.join(this.examplesDir, f);
      expectKind(dir, 'folder', "an epoch's example files");
      out.push({ epoch, dir });
    }
    return out.sort((a, b) => a.epoch - b.epoch || a.dir.localeCompare(b.dir));
  }
  /** The epochs that have an examples folder, ascending. */
  exampleEpochs(): number[] {
    return [...new Set(this.exampleFolders().map((f) => f.epoch))];
  }
  /** The part files of one epoch, `name` e.g. 'eval' (k-th files after the first, in order). */
  exampleParts(epoch: number, name?: string): string[] {
    const dir = this.exampleFolders().find((f) => f.epoch === epoch)?.dir ?? this.exampleEpochDir(epoch);
    const re = name ? new RegExp(`^part-${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(-\\d+)?\\.parquet$`) : /^part-.*\.parquet$/;
    return entries(dir)
      .filter((f) => re.test(f))
      .sort((a, b) => a.length - b.length || a.localeCompare(b))
      .map((f) => path.join(dir, f));
  }
  /** `arrow/` (or the Arrow sink's subdir). */
  arrowDir(subdir: string = RUN_DIRS.arrow): string {
    return path.join(this.dir, checkName(subdir, 'arrow folder'));
  }
  arrowFile(table: string, subdir?: string): string {
    return path.join(this.arrowDir(subdir), `${checkName(table, 'table')}.arrows`);
  }
  /** `eval/<name>/`; the name is checked to be a plain name (no path). */
  evalDir(name: string): string {
    return path.join(this.dir, RUN_DIRS.eval, checkName(name, 'evaluation name'));
  }
  /** Names of the `atflow eval` results kept (folders under eval/). */
  evalNames(): string[] {
    const root = path.join(this.dir, RUN_DIRS.eval);
    if (!expectKind(root, 'folder')) return [];
    return entries(root).filter((n) => !n.startsWith('.') && expectKind(path.join(root, n), 'folder', 'an evaluation'));
  }

  // ---- state and markers ----
  /** Whether the folder exists (it may itself be a link, e.g. to a scratch disk: only its entries may not). */
  exists(): boolean {
    const st = lstatOrNull(this.dir);
    if (!st) return false;
    const target = st.isSymbolicLink()
      ? (() => {
          try {
            return fs.statSync(this.dir);
          } catch {
            throw new AtflowError(
              'DATA_FILE',
              `${this.dir} is a symbolic link to nothing (${fs.readlinkSync(this.dir)}): remove it or make it point at a folder`,
              { path: this.dir },
            );
          }
        })()
      : st;
    if (!target.isDirectory()) throw damaged(this.dir, 'a file', 'a run folder');
    return true;
  }
  /** absent, finished (`_SUCCESS`), or unfinished (resumable). Reads only. */
  state(): 'absent' | 'finished' | 'unfinished' {
    if (!this.exists()) return 'absent';
    return expectKind(this.file('success'), 'file', 'the empty marker of a finished run') ? 'finished' : 'unfinished';
  }
  /** `_SUCCESS`, written last, once the whole folder is complete (only by the run, under its lock). */
  markSuccess(): void {
    this.lockHandle?.assertHeld();
    writeFileDurable(this.file('success'), '');
  }
  /** Removes `_SUCCESS` (a hand-built pipeline that writes into a finished folder again). */
  clearSuccess(): void {
    if (expectKind(this.file('success'), 'file')) fs.rmSync(this.file('success'));
  }
  /** Whether the folder holds anything besides its lock (an empty folder is as good as none). */
  hasContent(): boolean {
    return entries(this.dir).some((f) => f !== LOCK_FILE && !isTempName(f));
  }

  /**
   * Every folder and file of its own that atflow lists, writes or deletes is what it should be: a real
   * folder or a regular file, not a symbolic link, not the other kind. Throws an AtflowError naming the
   * first that is not. Reads only.
   */
  checkShape(): void {
    if (!this.exists()) return;
    for (const f of Object.values(RUN_FILES)) expectKind(path.join(this.dir, f), 'file');
    for (const t of TABLES) expectKind(this.tableFile(t), 'file');
    if (expectKind(this.checkpointsDir, 'folder', 'the checkpoints')) {
      expectKind(this.latestFile, 'file', 'a file naming the last checkpoint, e.g. epoch-0002');
      for (const f of entries(this.checkpointsDir)) {
        if (/^epoch-\d+$/.test(f)) expectKind(path.join(this.checkpointsDir, f), 'folder', 'a checkpoint');
        else if (f.endsWith('.safetensors')) expectKind(path.join(this.checkpointsDir, f), 'file');
      }
    }
    this.exampleEpochs();
    if (expectKind(this.segmentsDir(), 'folder', "the tables' segments")) {
      for (const t of TABLES)
        if (expectKind(this.segmentsDir(t), 'folder', `the segments of ${t}`)) for (const s of this.segments(t)) expectKind(s, 'file');
    }
    if (expectKind(this.arrowDir(), 'folder', 'the Arrow streams'))
      for (const f of entries(this.arrowDir())) if (f.endsWith('.arrows')) expectKind(path.join(this.arrowDir(), f), 'file');
    this.evalNames();
  }

  /** spec.json as written at run-start, or an AtflowError that says the folder is not a (readable) run folder. */
  readSpec(): { run_id?: string; spec?: Record<string, unknown>; [k: string]: unknown } {
    const file = this.specFile;
    if (!expectKind(file, 'file'))
      throw new AtflowError('DATA_FILE', `${this.dir} is not a run folder: spec.json is missing`, { path: file });
    let doc: unknown;
    try {
      doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new AtflowError('DATA_FILE', `${file}: unreadable (${(e as Error).message}); the run folder is damaged`, { path: file });
    }
    if (!doc || typeof doc !== 'object' || Array.isArray(doc))
      throw new AtflowError('DATA_FILE', `${file}: not a JSON object; the run folder is damaged`, { path: file });
    return doc as Record<string, unknown>;
  }

  /** The config a run folder was made from (spec.json's `spec`, without the folder's own annotations). */
  readConfig(): Record<string, unknown> {
    const doc = this.readSpec();
    if (!doc.spec || typeof doc.spec !== 'object')
      throw new AtflowError('DATA_FILE', `${this.specFile} has no 'spec' field; the run folder is damaged`, { path: this.specFile });
    const { variant: _v, meta: _m, ...raw } = doc.spec;
    return raw;
  }

  writeSpec(doc: unknown): string {
    writeJsonDurable(this.specFile, doc);
    return this.specFile;
  }

  // ---- lock ----
  /** The lock's holder and whether it is alive, or null when the folder is not locked. Reads only (but a probe file). */
  lockState(): LockState | null {
    return this.exists() ? inspectLock(this.dir) : null;
  }
  /** Creates the folder (naming why it cannot be) and takes its lock; see run-lock.ts. */
  lock(command: string): FolderLock {
    createFolder(this.dir, 'the run folder');
    this.lockHandle = acquireLock(this.dir, { command });
    return this.lockHandle;
  }
  /** The lock this object holds, if any. */
  get heldLock(): FolderLock | null {
    return this.lockHandle;
  }
  unlock(): void {
    this.lockHandle?.release();
    this.lockHandle = null;
  }

  // ---- cleaning (under the lock only) ----
  /**
   * Removes the temp files and folders writers that died left behind, in the folders the run writes
   * (not eval/, where an `atflow eval` of its own may be going). Only atflow's own temp names match.
   */
  removeTemp(): void {
    const dirs = [
      this.dir,
      this.checkpointsDir,
      this.arrowDir(),
      ...TABLES.map((t) => this.segmentsDir(t)),
      ...this.exampleFolders().map((f) => f.dir),
    ];
    for (const d of dirs) {
      if (!lstatOrNull(d)?.isDirectory()) continue;
      for (const f of entries(d)) if (isTempName(f) && f !== LOCK_FILE) removeEntry(path.join(d, f));
    }
  }
  /** Drops the examples partitions of epochs after `epoch` (a resumed run writes them again). */
  removeExampleEpochsAfter(epoch: number): void {
    for (const f of this.exampleFolders()) if (f.epoch > epoch) removeEntry(f.dir);
  }
}

/** Removes a file or a folder tree without following links (a link is removed, never what it points at). */
export function removeEntry(p: string): void {
  const st = lstatOrNull(p);
  if (!st) return;
  if (st.isDirectory()) {
    for (const f of fs.readdirSync(p)) removeEntry(path.join(p, f));
    fs.rmdirSync(p);
  } else {
    fs.unlinkSync(p);
  }
}

/**
 * The spec as stored in the run folder, with the metadata the summary and report read, and the plugins
 * the run was built with (absolute module paths: `atflow eval`, `probe` load them from here).
 */
export function storedSpec(run: ResolvedRun, plugins: readonly PluginRef[] = []): Record<string, unknown> {
  const s = run.spec;
  return {
    ...s,
    variant: run.variant,
    meta: {
      trainer: s.trainer.te ? `${s.trainer.name}+te` : s.trainer.name,
      label_noise: { kind: s.labelNoise.kind, rate: s.labelNoise.rate },
      attack: { norm: s.attack.norm, eps: s.attack.eps, alpha: s.attack.alpha, steps: s.attack.steps },
      ...(plugins.length ? { plugins: plugins.map((p) => ({ module: p.module, export: p.export })) } : {}),
    },
  };
}

/** Dotted paths where two specs differ (for the resume-mismatch message). */
export function specDifferences(a: unknown, b: unknown, at = ''): string[] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => specDifferences(a[k], b[k], at ? `${at}.${k}` : k));
  }
  return canonicalJson(a) === canonicalJson(b)
    ? []
    : [`${at || '(top level)'} (folder: ${JSON.stringify(a) ?? 'absent'}, now: ${JSON.stringify(b) ?? 'absent'})`];
}

/**
 * An unfinished run folder may be continued only by the same config (its description aside) and only
 * with `resume`, and not while another process writes it; otherwise an error says what differs, who
 * writes it, or how to continue. Reads only.
 */
export function checkUnfinishedFolder(folder: RunFolder, stored: Record<string, unknown>, resume: boolean): void {
  const runDir = folder.dir;
  folder.checkShape();
  const lock = folder.heldLock ? null : folder.lockState();
  if (lock?.alive) {
    throw new AtflowError(
      'RESUME',
      `${runDir}: another atflow process is writing this folder: ` +
        `${lock.why}; two writers would corrupt it. Wait for it to end, stop ` +
        `it, or use another --out`,
      { runDir, holder: lock.holder },
    );
  }
  if (fs.existsSync(folder.specFile)) {
    let previous: { spec?: unknown };
    try {
      previous = folder.readSpec();
    } catch (e) {
      throw new AtflowError(
        'RESUME',
        `${folder.specFile}: unreadable ` +
          `(${(e as Error).message.replace(/^.*unreadable \((.*)\); the run folder is damaged$/, '$1')}); ` +
          `the run folder is damaged: use another --out or remove the folder`,
        { file: folder.specFile },
      );
    }
    // what the run computes must match; its description (not in the run id either) and where its plugins' files are may change
    const withoutDescription = (v: unknown) => {
      if (!v || typeof v !== 'object') return v;
      const { description: _d, meta, ...rest } = v as Record<string, unknown>;
      if (!meta || typeof meta !== 'object') return meta === undefined ? rest : { ...rest, meta };
      const { plugins: _p, ...metaRest } = meta as Record<string, unknown>;
      return { ...rest, meta: metaRest };
    };
    const now = withoutDescription(JSON.parse(JSON.stringify(stored)));
    const before = withoutDescription(previous?.spec);
    if (canonicalJson(before) !== canonicalJson(now)) {
      const diff = specDifferences(before, now);
      throw new AtflowError(
        'RESUME',
        `${runDir}: the folder holds a run of a different config (spec.json ` +
          `differs at ${diff.slice(0, 5).join(', ')}${diff.length > 5 ? ', ...' : ''}); ` +
          `use another --out or remove the folder`,
        { runDir, differences: diff },
      );
    }
  }
  if (!resume && folder.hasContent()) {
    throw new AtflowError('RESUME', `${runDir}: an unfinished run is already there; continue it with --resume, or remove the folder`, {
      runDir,
    });
  }
}

/**
 * Opens a run folder for writing: creates it, takes its lock (naming the holder if another process has
 * it), and checks again under the lock what executeRun checked before building the run (finished
 * meanwhile, a different config, unfinished without resume, damaged or linked folders); then removes the
 * temp files dead writers left. Throws with the lock released.
 */
export function openRunFolder(runDir: string, stored: Record<string, unknown>, resume: boolean): RunFolder {
  const folder = new RunFolder(runDir);
  folder.lock('atflow run');
  try {
    const state = folder.state();
    if (state === 'finished')
      throw new AtflowError('RESUME', `${runDir}: finished by another process while this one was starting; nothing was written`, {
        runDir,
      });
    checkUnfinishedFolder(folder, stored, resume);
    folder.removeTemp();
    return folder;
  } catch (e) {
    folder.unlock();
    throw e;
  }
}

/**
 * Removes a run folder (`--rerun`): renamed aside first, so that the folder is either there as it was
 * or gone, never half-deleted under its own name (a crash leaves `.<name>.removing-<pid>`, which no run
 * reads). Refused while another process writes it (its lock names the holder). A run folder that is a
 * link (to a scratch disk) keeps its link: what it points at is emptied instead. Nothing is removed
 * through a link inside it (removeEntry).
 */
export function removeRunFolder(runDir: string): void {
  const folder = new RunFolder(runDir);
  if (!folder.exists()) return;
  const lock = folder.lockState();
  if (lock?.alive) {
    throw new AtflowError(
      'RESUME',
      `${runDir}: another atflow process is writing this folder: ${lock.why}; --rerun removes it only once that process has ended`,
      { runDir, holder: lock.holder },
    );
  }
  try {
    if (fs.lstatSync(runDir).isSymbolicLink()) {
      for (const f of entries(runDir)) removeEntry(path.join(runDir, f));
      return;
    }
    const aside = path.join(path.dirname(runDir), `.${path.basename(runDir)}.removing-${process.pid}`);
    removeEntry(aside);
    fs.renameSync(runDir, aside);
    fsyncDir(path.dirname(path.resolve(runDir)));
    removeEntry(aside);
  } catch (e) {
    if (e instanceof AtflowError) throw e;
    throw new AtflowError('IO', `cannot remove the run folder ${runDir} to run it again: ${(e as Error).message}`, { path: runDir });
  }
}
