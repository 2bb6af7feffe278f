import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

/**
 * Imports only point down the layers (DESIGN.md, "Layers"). A file may import from its own folder or
 * from a folder of a lower layer; folders of one layer (sources, models) do not import each other.
 * type-only imports count: they are dependencies too.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['core'], // Batch stages, records, RunEvent, RunSink, errors, RNG, Model, the backend's name and info as data
  ['backend'], // backend choice and per-backend kernels
  ['data', 'models'], // datasets, splits, label noise, the batch planner; networks and their weights
  ['algorithms'], // tensor maths only: attacks, objectives, trainers + TE, optimiser, schedules, the train step
  ['operators'], // the batch-stage RxJS operators: load, randomizeLabels, augment, attack, train, detectEvents
  ['evaluation', 'analysis'], // the threat model, evaluators, AutoAttack; complexity, gradient probe, the best-epoch rule
  ['config'], // the schema, extends / variants / --set, the registry and its built-ins, spec → run parts
  ['store'], // the run folder: paths, markers, lock, durable writes, checkpoints
  ['logs'], // the run-table writer (Parquet, Arrow), summary.json, progress, the built-in sinks
  ['run'], // executeRun, the epoch operators, the run lifecycle, data-parallel training, the event hub
  ['report'], // the HTML report, figures, data maps, figure export, the sweep report
  ['sweep'], // sweep spec, expansion, manifest, executors
  ['cli'], // commands and the CLI driver
  ['index.ts'], // the public API re-exports everything
];

const SRC = path.join(__dirname, '..', 'src');
const rank = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function layerOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0];
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : /\.(ts|js)$/.test(e.name) ? [p] : [];
  });
}

/** Every relative module a file imports, re-exports, requires or imports dynamically, resolved under src/. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((m) => m.startsWith('.'))
    .map((m) => path.resolve(path.dirname(file), m));
}

/** 'from → to' for an import that does not point down the layers, or null. */
function violation(fromLayer: string, toLayer: string): string | null {
  if (fromLayer === toLayer) return null;
  const a = rank.get(fromLayer);
  const b = rank.get(toLayer);
  if (a === undefined || b === undefined) return `${fromLayer} → ${toLayer}: a folder of no layer`;
  return b < a ? null : `${fromLayer} (layer ${a}) → ${toLayer} (layer ${b})`;
}

describe('layers', () => {
  const files = sourceFiles(SRC);

  it('every folder of src/ has its layer', () => {
    const folders = [...new Set(files.map(layerOf))].sort();
    expect(folders.filter((f) => !rank.has(f))).toEqual([]);
  });

  it('the rule itself: up and sideways are violations, down is not', () => {
    expect(violation('core', 'backend')).toMatch(/core \(layer 0\) → backend/);
    expect(violation('backend', 'algorithms')).not.toBeNull();
    expect(violation('data', 'models')).not.toBeNull();
    expect(violation('evaluation', 'analysis')).not.toBeNull();
    expect(violation('logs', 'run')).not.toBeNull();
    expect(violation('operators', 'data')).toBeNull();
    expect(violation('run', 'logs')).toBeNull();
    expect(violation('logs', 'store')).toBeNull();
  });

  it('no import in src/ points up (or sideways) the layers', () => {
    const bad: string[] = [];
    let edges = 0;
    for (const file of files) {
      for (const target of importsOf(file)) {
        if (!target.startsWith(SRC + path.sep)) continue;
        edges += 1;
        const v = violation(layerOf(file), layerOf(target));
        if (v) bad.push(`${path.relative(SRC, file)} imports ${path.relative(SRC, target)}: ${v}`);
      }
    }
    expect(edges).toBeGreaterThan(500); // the scan sees the real graph
    expect(bad).toEqual([]);
  });
});
