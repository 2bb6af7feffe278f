import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';

/**
 * Issue 23: the epoch level has the batch level's guarantee. An epoch is typed by stage (new → trained →
 * evaluated → recorded → ranked → ended) as a batch is, so the README's composition type-checks and a
 * wrong operator order does not, at compile time, where the old epoch operators (each a
 * MonoTypeOperatorFunction<EpochState> over a bag of optional fields) compiled in any order and failed
 * at run time, if at all. The run's history is the stream's (`s.history`), not a mutable RunContext's.
 */
const SRC = path.join(__dirname, '..', '..', 'src');
// the snippets live in a temp folder: rxjs by its path, the one copy src/ uses
const RXJS = path.dirname(require.resolve('rxjs/package.json'));

const HEADER = `
import { pipe, tap } from ${JSON.stringify(RXJS)};
import { trainEpoch, evaluateEvery, recordEpoch, trackBest, measureComplexity, endEpoch, checkpointEvery, stopWhen, standardEpoch,
         type ExecuteRunOptions, type RunContext } from ${JSON.stringify(SRC)};
declare const r: RunContext;
`;

const SNIPPETS: Record<string, string> = {
  // README.md / examples/pipeline-in-code.ts, and an early stop reading the stream's history
  'ok.ts': `
export const readme: ExecuteRunOptions['epoch'] = (run) =>
  pipe(trainEpoch(run), evaluateEvery(run), recordEpoch(run), trackBest(run), endEpoch(run), checkpointEvery(run), stopWhen((s) => s.record!.test_robust_acc < 0.2));
export const inCode: ExecuteRunOptions['epoch'] = (run) =>
  pipe(trainEpoch(run), evaluateEvery(run), recordEpoch(run), trackBest(run), measureComplexity(run), endEpoch(run), checkpointEvery(run),
       tap((s) => console.log(s.record?.train_robust_acc)), stopWhen((s) => run.shouldStop(), 'interrupted'));
export const history: ExecuteRunOptions['epoch'] = (run) => pipe(standardEpoch(run), stopWhen((s) => s.history.filter((e) => e.best_epoch === e.epoch).length > 3));
`,
  'record-before-evaluate.ts': `export const e: ExecuteRunOptions['epoch'] = (run) => pipe(trainEpoch(run), recordEpoch(run), evaluateEvery(run), trackBest(run), endEpoch(run));`,
  'checkpoint-before-end.ts': `export const e: ExecuteRunOptions['epoch'] = (run) => pipe(trainEpoch(run), evaluateEvery(run), recordEpoch(run), trackBest(run), checkpointEvery(run), endEpoch(run));`,
  'complexity-before-best.ts': `export const e: ExecuteRunOptions['epoch'] = (run) => pipe(trainEpoch(run), evaluateEvery(run), recordEpoch(run), measureComplexity(run), trackBest(run), endEpoch(run));`,
  'no-end-epoch.ts': `export const e: ExecuteRunOptions['epoch'] = (run) => pipe(trainEpoch(run), evaluateEvery(run), recordEpoch(run), trackBest(run), checkpointEvery(run));`,
  'train-twice.ts': `export const e: ExecuteRunOptions['epoch'] = (run) => pipe(trainEpoch(run), trainEpoch(run), evaluateEvery(run), recordEpoch(run), trackBest(run), endEpoch(run));`,
  'history-on-context.ts': `export const n: number = r.epochs.length;`,
};

describe('epoch operators are typed by stage', () => {
  jest.setTimeout(240_000);
  let errors: Record<string, string[]>;

  beforeAll(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-epoch-stages-'));
    const files = Object.entries(SNIPPETS).map(([name, body]) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, HEADER + body);
      return f;
    });
    const config = ts.readConfigFile(path.join(SRC, '..', 'tsconfig.json'), ts.sys.readFile).config;
    const { options } = ts.parseJsonConfigFileContent(config, ts.sys, path.join(SRC, '..'));
    const program = ts.createProgram(files, { ...options, noEmit: true, rootDir: undefined, noUnusedLocals: false });
    errors = {};
    for (const f of files) {
      const diags = ts.getPreEmitDiagnostics(program, program.getSourceFile(f));
      errors[path.basename(f)] = diags.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
    }
  });

  it("the README's and examples' compositions type-check", () => {
    expect(errors['ok.ts']).toEqual([]);
  });

  it.each(Object.keys(SNIPPETS).filter((n) => n !== 'ok.ts'))('%s does not', (name) => {
    expect(errors[name].length).toBeGreaterThan(0);
  });
});
