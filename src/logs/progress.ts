import * as cliProgress from 'cli-progress';
import type { OperatorFunction } from 'rxjs';
import type { EvalProgress, RunEvent } from '../core/run-event';
import { sinkOperator, type RunSink } from '../core/run-sink';

export interface ProgressOptions {
  /** Where to draw (default process.stderr, so stdout stays clean for --json output). */
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Print nothing (the CLI's --quiet). */
  readonly quiet?: boolean;
  /** Force bars (true) or plain lines (false); default: bars when the stream is a TTY. */
  readonly tty?: boolean;
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');

/** 75s → '1m15s'; '?' when unknown. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  return s >= 60
    ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`
    : s >= 10
      ? `${Math.round(s)}s`
      : `${s.toFixed(1)}s`;
}

/**
 * The progress line of a long evaluation (`atflow eval`, the end-of-training AutoAttack): the bar over
 * the batches' steps, the step and the points it attacks, its own time once it ended, the robust
 * accuracy so far, total elapsed and ETA.
 */
export function formatEvalProgress(p: EvalProgress): string {
  const fraction = (p.batch + (p.stepIndex + (p.phase === 'end' ? 1 : 0)) / p.steps) / p.batches;
  const eta = fraction > 0 ? p.elapsed / fraction - p.elapsed : NaN;
  const bar = `[${'#'.repeat(Math.round(fraction * 20)).padEnd(20, '.')}]`;
  const head = `${p.what} ${bar} batch ${p.batch + 1}/${p.batches} ${p.step} (${p.stepIndex + 1}/${p.steps})`;
  const points = `${p.attacked} point${p.attacked === 1 ? '' : 's'}`;
  return p.phase === 'start'
    ? `${head}: ${points}…, ${formatSeconds(p.elapsed)} elapsed`
    : `${head}: ${points} in ` +
        `${formatSeconds(p.stepSeconds)}${Number.isFinite(p.robustAcc) ? `, robust ${pct(p.robustAcc)}` : ''}, ` +
        `${formatSeconds(p.elapsed)} elapsed, ETA ${formatSeconds(eta)}`;
}
const num = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '–');

/**
 * The progress display as an awaited sink ({ name, handle, close }): on a TTY one cli-progress bar
 * per epoch (steps done, ETA, running loss, running clean / robust train accuracy from the train-phase
 * rows), left on screen when the epoch ends with the test accuracies; elsewhere (CI logs, files) one
 * plain line per epoch; nothing when quiet.
 */
export class ProgressDisplay implements RunSink {
  readonly name = 'progress';
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  private readonly useBars: boolean;
  private bar: cliProgress.SingleBar | null = null;
  private epochs = 0;
  private runId = '';
  private epoch = 0;
  private steps = 0;
  private lossSum = 0;
  private lossN = 0;
  private clean = 0;
  private robust = 0;
  private rows = 0;

  constructor(private readonly options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.useBars = options.tty ?? Boolean(this.stream.isTTY);
  }

  private write(line: string): void {
    if (!this.options.quiet) this.stream.write(line + '\n');
  }

  private payload() {
    return {
      epoch: this.epoch,
      epochs: this.epochs,
      loss: num(this.lossN ? this.lossSum / this.lossN : NaN),
      clean: pct(this.rows ? this.clean / this.rows : NaN),
      robust: pct(this.rows ? this.robust / this.rows : NaN),
    };
  }

  handle(ev: RunEvent): void {
    if (this.options.quiet) return;
    switch (ev.type) {
      case 'run-start':
        this.epochs = ev.epochs;
        this.runId = ev.runId;
        this.write(
          `run ${ev.runId}: ${ev.epochs} epochs from epoch ${ev.firstEpoch}, ${ev.trainSize} training examples, backend ${ev.backend.name}`,
        );
        return;
      case 'epoch-start':
        this.epoch = ev.epoch;
        this.steps = ev.steps;
        this.lossSum = this.lossN = this.clean = this.robust = this.rows = 0;
        if (this.useBars) {
          this.bar = new cliProgress.SingleBar(
            {
              stream: this.stream as NodeJS.WritableStream,
              format:
                'epoch {epoch}/{epochs} [{bar}] {value}/{total} | ETA {eta_formatted} | loss {loss} | train clean {clean} robust {robust}',
              hideCursor: false,
              clearOnComplete: false,
              stopOnComplete: false,
              noTTYOutput: true,
              notTTYSchedule: 1000,
              etaBuffer: 20,
            },
            cliProgress.Presets.shades_classic,
          );
          this.bar.start(Math.max(1, ev.steps), 0, this.payload());
        }
        return;
      case 'step':
        this.lossSum += ev.record.loss;
        this.lossN++;
        this.bar?.update(ev.record.step + 1, this.payload());
        return;
      case 'examples':
        if (ev.columns.phase !== 'train') return;
        for (let i = 0; i < ev.columns.example.length; i++) {
          this.clean += ev.columns.correct_clean[i];
          this.robust += ev.columns.correct_adv[i];
        }
        this.rows += ev.columns.example.length;
        this.bar?.update(this.payload());
        return;
      case 'epoch-end': {
        const r = ev.record;
        const tail =
          `test clean ${pct(r.test_clean_acc)} robust ${pct(r.test_robust_acc)} ` +
          `| best epoch ${r.best_epoch} | ${(r.wall_ms / 1000).toFixed(1)}s`;
        if (this.bar) {
          this.bar.update(Math.max(1, this.steps), this.payload());
          this.bar.stop();
          this.bar = null;
          this.write(`  ${tail}`);
        } else {
          this.write(
            `epoch ${r.epoch}/${this.epochs} | loss ${num(r.train_loss)} | train ` +
              `clean ${pct(r.train_clean_acc)} robust ${pct(r.train_robust_acc)} | ${tail}`,
          );
        }
        return;
      }
      case 'eval-progress':
        // one line per step start and end (a step can take minutes: the line says what runs meanwhile)
        this.write(formatEvalProgress(ev.progress));
        return;
      case 'warning':
        this.write(`warning${ev.epoch > 0 ? ` (epoch ${ev.epoch})` : ''}: ${ev.message}`);
        return;
      case 'run-end':
        this.close();
        this.write(`run ${this.runId} ${ev.status} in ${(ev.wallMs / 1000).toFixed(1)}s${ev.error ? `: ${ev.error}` : ''}`);
        return;
      default:
        return;
    }
  }

  close(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

/** `events$.pipe(progressSink())`: draws while the run goes; completes with the stream. */
export function progressSink(options: ProgressOptions = {}): OperatorFunction<RunEvent, never> {
  return sinkOperator(() => new ProgressDisplay(options));
}
