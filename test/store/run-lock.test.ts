import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { acquireLock, inspectLock, LOCK_FILE, type LockHolder } from '../../src/store/run-lock';

/**
 * One writer per run folder (issue 24 item 1). Before, two `atflow run … --out X` (or two --resume, as
 * a double-submitted sweep task does) both wrote: every epoch twice in epochs.parquet, or one died on the
 * other's deleted temp file. Now the second is refused naming the holder; a lock whose holder is dead is
 * taken over: at once on the same machine (the pid is gone, or belongs to a process that started later),
 * after `stale` without heartbeat on another machine (a SLURM task on another node), and of several
 * processes that find the same dead lock exactly one takes it.
 */

const ROOT = path.join(__dirname, '..', '..');
let root: string;
let n = 0;
beforeAll(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-lock-'))));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function dir(): string {
  const d = path.join(root, `f-${n++}`);
  fs.mkdirSync(d);
  return d;
}

/** A lock file as another process would have written it. */
function plant(d: string, over: Partial<LockHolder>, ageS = 0): void {
  const me = JSON.parse(JSON.stringify(acquireProbe()));
  const file = path.join(d, LOCK_FILE);
  fs.writeFileSync(file, JSON.stringify({ ...me, token: 'planted', ...over }));
  if (ageS) fs.utimesSync(file, new Date(Date.now() - ageS * 1000), new Date(Date.now() - ageS * 1000));
}

/** This process's own holder record (taken once in a scratch folder). */
let probeHolder: LockHolder | null = null;
function acquireProbe(): LockHolder {
  if (!probeHolder) {
    const l = acquireLock(dir());
    probeHolder = l.holder;
    l.release();
  }
  return probeHolder;
}

function deadPid(): number {
  // a process that has exited (and been reaped): its pid names nobody
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

test('a second writer is refused with the holder named: pid, host, start time; release lets the next one in', () => {
  const d = dir();
  const first = acquireLock(d, { command: 'atflow run' });
  expect(() => acquireLock(d)).toThrow(
    new RegExp(
      `another atflow process is writing this folder: process ${process.pid} on ${os.hostname()} \\(atflow run, started ${first.holder.started_at.replace(/[.]/g, '\\.')}\\) is running; two writers would corrupt it`,
    ),
  );
  first.release();
  expect(fs.existsSync(path.join(d, LOCK_FILE))).toBe(false);
  const second = acquireLock(d);
  expect(second.tookOver).toBeNull();
  second.release();
});

test('a lock left by a dead process on this machine is taken over at once', () => {
  const d = dir();
  plant(d, { pid: deadPid() });
  const l = acquireLock(d);
  expect(l.tookOver).toMatch(/is no longer running/);
  l.release();
});

test('a pid reused by another process does not keep a dead lock alive (start tick mismatch)', () => {
  const d = dir();
  // our own pid is alive, but the lock says it started at another tick: the holder was another process
  plant(d, { pid: process.pid, proc_start: '1' });
  const l = acquireLock(d);
  expect(l.tookOver).toMatch(new RegExp(`pid ${process.pid} now belongs to another process`));
  l.release();
});

test('another machine: refused while its heartbeat is fresh, taken over once it is older than stale', () => {
  const d = dir();
  plant(d, { pid: 1, host: 'node-b', boot_id: 'other-boot' });
  expect(() => acquireLock(d, { staleMs: 60_000 })).toThrow(
    /process 1 on node-b .* holds it \(last heartbeat 0 s ago; on another machine a lock is taken over after 60 s without one\)/,
  );
  plant(d, { pid: 1, host: 'node-b', boot_id: 'other-boot' }, 120);
  const l = acquireLock(d, { staleMs: 60_000 });
  expect(l.tookOver).toMatch(/process 1 on node-b .*: no heartbeat for 12\d s \(more than 60 s\)/);
  l.release();
});

test('the heartbeat keeps the lock fresh even while the main thread is busy', () => {
  const d = dir();
  const l = acquireLock(d, { staleMs: 2_000, heartbeatMs: 100 });
  const file = path.join(d, LOCK_FILE);
  const end = Date.now() + 1_500;
  while (Date.now() < end) {
    // a long synchronous computation (a big batch): the worker thread beats on
  }
  const age = Date.now() - fs.statSync(file).mtimeMs;
  expect(age).toBeLessThan(1_000);
  // seen from another machine, the holder is alive
  const seen = inspectLock(d, { staleMs: 2_000 });
  expect(seen?.alive).toBe(true);
  l.release();
});

test("a holder whose lock was taken over refuses to commit; it never removes the new holder's lock", () => {
  const d = dir();
  const l = acquireLock(d);
  // someone judged us dead and replaced the lock
  fs.rmSync(path.join(d, LOCK_FILE));
  plant(d, { pid: 4242, host: 'node-c', boot_id: 'x', token: 'theirs' });
  expect(() => l.assertHeld()).toThrow(/no longer holds the folder's lock: process 4242 on node-c .* took it over/);
  l.release();
  expect(JSON.parse(fs.readFileSync(path.join(d, LOCK_FILE), 'utf8')).token).toBe('theirs');
});

test('of eight processes that find the same dead lock, exactly one takes it over', async () => {
  const d = dir();
  plant(d, { pid: 1, host: 'node-dead', boot_id: 'x' }, 600);
  const lockModule = path.join(ROOT, 'dist', 'store', 'run-lock.js');
  const barrier = path.join(root, `barrier-${n++}`);
  // the winner holds the lock until every contender has answered (so a late starter cannot find it free)
  const script = `
    const fs = require('fs');
    const { acquireLock } = require(${JSON.stringify(lockModule)});
    try {
      const l = acquireLock(${JSON.stringify(d)}, { staleMs: 60000 });
      process.stdout.write('won\\n');
      const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(barrier)})) { clearInterval(t); l.release(); } }, 50);
    } catch (e) { process.stdout.write('refused: ' + e.message + '\\n'); }`;
  const children = Array.from({ length: 8 }, () => spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const answers = children.map(
    (c) =>
      new Promise<string>((resolve) => {
        let out = '';
        c.stdout.on('data', (b) => {
          out += b;
          if (out.endsWith('\n')) resolve(out.trim());
        });
        c.on('close', () => resolve(out.trim()));
      }),
  );
  const closed = children.map((c) => new Promise((resolve) => c.on('close', resolve)));
  const results = await Promise.all(answers);
  fs.writeFileSync(barrier, '');
  await Promise.all(closed);
  expect(results.filter((r) => r === 'won')).toHaveLength(1);
  for (const r of results.filter((x) => x !== 'won'))
    expect(r).toMatch(/refused: .*another atflow process is writing this folder: process \d+ on .* is running/);
  expect(fs.existsSync(path.join(d, LOCK_FILE))).toBe(false); // the winner released it
});
