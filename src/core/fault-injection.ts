/**
 * Fault injection for the crash-safety tests: `ATFLOW_FAULT=<point>@<n>` makes the process SIGKILL
 * itself the n-th time (1-based) it passes `faultPoint(<point>)`. Points: 'attack' (inside a batch's
 * attack), 'parquet-close' (a Parquet file fully written to its temp name, not yet renamed),
 * 'checkpoint-write' (a checkpoint folder written, not yet renamed), 'epoch-boundary' (after an epoch's
 * checkpoint), 'arrow-append' (half of an Arrow stream's batch written: a torn tail). Unset (always, outside tests): one string comparison
 * per call.
 */
const spec = process.env.ATFLOW_FAULT;
const [target, nth] = spec ? [spec.split('@')[0], Number(spec.split('@')[1] ?? 1)] : [null, 0];
let count = 0;

export function faultPoint(point: string): void {
  if (point !== target) return;
  if (++count === nth) process.kill(process.pid, 'SIGKILL');
}

/** Whether `point` is the targeted one: lets a writer split a write in two only under test. */
export function faultArmed(point: string): boolean {
  return point === target;
}
