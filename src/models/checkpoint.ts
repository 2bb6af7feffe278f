import * as tf from '@tensorflow/tfjs';
import { AtflowError } from '../core/errors';
import type { Model, NamedVariable } from '../core/model';
import { type SlotLayout, tfToTorchValues, torchToTfValues } from './layers/slot';
import {
  FLOAT_DTYPES,
  float32Values,
  openSafetensorsFile,
  type SafetensorsDtype,
  type SafetensorsTensor,
  writeSafetensorsFile,
} from './safetensors';

/**
 * Model weights ↔ safetensors with PyTorch's state_dict names and layouts, so a checkpoint written here
 * loads with `model.load_state_dict(safetensors.torch.load_file(path))` and vice versa.
 * Layouts follow the Model convention (core/model.ts): a rank-4 variable is a conv kernel (tfjs HWIO ↔
 * PyTorch OIHW), a rank-2 variable a linear weight ([in, out] ↔ [out, in]), anything else is copied.
 * int32 variables (num_batches_tracked) are stored as I64, PyTorch's dtype.
 */

/** One tensor in PyTorch layout, as values. */
export interface StateDictEntry {
  readonly name: string;
  readonly dtype: 'F32' | 'I64';
  readonly shape: readonly number[];
  readonly values: Float32Array | Int32Array;
}

function layoutOf(v: tf.Variable): SlotLayout {
  return v.rank === 4 ? 'conv' : v.rank === 2 ? 'dense' : 'plain';
}

function torchShape(v: tf.Variable): number[] {
  const s = v.shape as number[];
  if (v.rank === 4) return [s[3], s[2], s[0], s[1]];
  if (v.rank === 2) return [s[1], s[0]];
  return [...s];
}

function fileDtype(v: tf.Variable): 'F32' | 'I64' {
  if (v.dtype === 'float32') return 'F32';
  if (v.dtype === 'int32') return 'I64';
  throw new AtflowError('ARGUMENT', `variable dtype ${v.dtype} cannot be checkpointed`);
}

/** state_dict order when the model knows it (Network), else parameters then buffers. */
function entriesOf(model: Model): readonly NamedVariable[] {
  const withOrder = model as Model & { stateDict?: readonly NamedVariable[] };
  return withOrder.stateDict ?? [...model.parameters, ...model.buffers];
}

/** The model's state_dict in PyTorch layout (a copy of every value). */
export function stateDictOf(model: Model): StateDictEntry[] {
  return entriesOf(model).map(({ name, variable }) => {
    const shape = torchShape(variable);
    // Permuted in JS from a copy of the variable's values: no tensor is created, so none can leak.
    const values = tfToTorchValues(variable.dataSync() as Float32Array | Int32Array, shape, layoutOf(variable));
    return { name, dtype: fileDtype(variable), shape, values };
  });
}

function toBytes(e: StateDictEntry): Uint8Array {
  if (e.dtype === 'F32') {
    const f = e.values instanceof Float32Array ? e.values : Float32Array.from(e.values);
    return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  }
  const wide = new BigInt64Array(e.values.length);
  for (let i = 0; i < e.values.length; i++) wide[i] = BigInt(Math.trunc(e.values[i]));
  return new Uint8Array(wide.buffer);
}

/** A model's weights as the tensors and metadata of its safetensors file, held in host memory (a copy). */
export interface WeightsSnapshot {
  readonly tensors: readonly SafetensorsTensor[];
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Every parameter and buffer as safetensors tensors (PyTorch layout). Metadata records format "pt" (as
 * safetensors.torch does) and the model's name, classes and input shape; `extra` adds string pairs.
 */
export function weightsSnapshot(model: Model, extra: Readonly<Record<string, string>> = {}): WeightsSnapshot {
  return {
    tensors: stateDictOf(model).map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: toBytes(e) })),
    metadata: {
      format: 'pt',
      'atflow.model': model.name,
      'atflow.num_classes': String(model.numClasses),
      'atflow.input_shape': model.inputShape.join(','),
      ...extra,
    },
  };
}

/** Saves every parameter and buffer to one safetensors file, durably and atomically (weightsSnapshot's tensors and metadata). */
export function saveWeights(model: Model, file: string, extra: Readonly<Record<string, string>> = {}): void {
  const s = weightsSnapshot(model, extra);
  writeSafetensorsFile(file, s.tensors, s.metadata);
}

function listNames(names: readonly string[]): string {
  const shown = names
    .slice(0, 5)
    .map((n) => `'${n}'`)
    .join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

/**
 * Renames from a file's tensor names to the model's: `{"fc.weight": "linear.weight"}` renames one tensor,
 * a key ending in `*` renames every name with that prefix (`{"backbone.*": "*"}`, `{"head.*": "linear.*"}`),
 * and null drops the tensor (`{"n_averaged": null}`). Exact keys win over prefixes, longer prefixes over
 * shorter ones.
 */
export type KeyMap = Readonly<Record<string, string | null>>;

export interface LoadOptions {
  readonly keyMap?: KeyMap;
}

export interface LoadReport {
  /** What was done beyond copying same-named F32 tensors: prefixes stripped, renames, dtype conversions. */
  readonly notes: readonly string[];
}

/**
 * The prefixes that wrappers add to every state_dict name, stripped when the name does not match as it is
 * (the set RobustBench and timm strip): nn.DataParallel, DistributedDataParallel and the EMA / SWA
 * AveragedModel keep the model as `module`; torch.compile as `_orig_mod`; RobustBench's and Lightning's
 * wrappers as `model`. They may be nested (`_orig_mod.module.`).
 */
const WRAPPER_PREFIXES: readonly (readonly [string, string])[] = [
  ['module.', 'DataParallel / DistributedDataParallel / AveragedModel'],
  ['_orig_mod.', 'torch.compile'],
  ['model.', 'a wrapper module named model'],
];

/** A file tensor as the planner sees it: no data needed. */
interface FileTensor {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
}

/** Checks a key map's entries (from JSON: any value can come); returns it typed. */
export function checkKeyMap(keyMap: Readonly<Record<string, unknown>>): KeyMap {
  for (const [from, to] of Object.entries(keyMap)) {
    const bad = (why: string) => new AtflowError('ARGUMENT', `key map: "${from}": ${JSON.stringify(to)} ${why}`, { key: from });
    if (to !== null && typeof to !== 'string') throw bad('must map to a name or null (to drop the tensor)');
    if (from.indexOf('*') !== -1 && (from.indexOf('*') !== from.length - 1 || from.length === 1))
      throw bad("has a '*' that is not the end of a prefix ('backbone.*')");
    if (typeof to === 'string' && to.indexOf('*') !== -1 && (!from.endsWith('*') || to.indexOf('*') !== to.length - 1)) {
      throw bad("has a '*' in the new name: only a prefix key ('backbone.*') maps to a prefix ('*' or 'features.*')");
    }
  }
  return keyMap as KeyMap;
}

/** The key map's target for `name`: a string, null (drop), or undefined (the map does not mention it). */
function mapName(keyMap: KeyMap, name: string, used: Set<string>): string | null | undefined {
  if (Object.prototype.hasOwnProperty.call(keyMap, name)) {
    used.add(name);
    return keyMap[name];
  }
  let best: string | undefined;
  for (const key of Object.keys(keyMap)) {
    if (key.endsWith('*') && name.startsWith(key.slice(0, -1)) && (best === undefined || key.length > best.length)) best = key;
  }
  if (best === undefined) return undefined;
  used.add(best);
  const to = keyMap[best];
  return to === null ? null : to.endsWith('*') ? to.slice(0, -1) + name.slice(best.length - 1) : to;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Why the names do not match, with the model's unmatched names beside the file's (a file name that ends
 * with a model name shares its row), and a key map when one prefix explains every pair.
 */
function mismatchError(
  model: Model,
  source: string,
  needed: readonly { name: string; shape: readonly number[] }[],
  missing: readonly string[],
  unexpected: readonly FileTensor[],
): AtflowError {
  const head = [
    missing.length > 0 ? `missing tensor(s) ${listNames(missing)} that model '${model.name}' needs (${needed.length} tensors)` : '',
    unexpected.length > 0 ? `tensor(s) ${listNames(unexpected.map((t) => t.name))} do not belong to model '${model.name}'` : '',
  ].filter(Boolean);
  const shapes = new Map(needed.map((e) => [e.name, e.shape]));
  const free = new Set(unexpected);
  const rows: [string, string][] = [];
  const prefixes = new Set<string>();
  for (const m of missing) {
    const partner = [...free].find((f) => f.name.endsWith(`.${m}`));
    if (partner) {
      free.delete(partner);
      prefixes.add(partner.name.slice(0, partner.name.length - m.length));
    }
    rows.push([
      `${m} ${shapeText(shapes.get(m)!)}`,
      partner ? `${partner.name} ${partner.shape.length ? shapeText(partner.shape) : '[]'}` : '',
    ]);
  }
  for (const f of free) rows.push(['', `${f.name} ${shapeText(f.shape)}`]);
  const SHOWN = 12;
  const width = Math.min(60, Math.max(28, ...rows.slice(0, SHOWN).map((r) => r[0].length + 2)));
  const table = [
    `  ${`model '${model.name}' needs`.padEnd(width)}the file holds (not matched)`,
    ...rows.slice(0, SHOWN).map(([a, b]) => `  ${(a || '-').padEnd(width)}${b || '-'}`),
    ...(rows.length > SHOWN ? [`  … ${rows.length - SHOWN} more row(s)`] : []),
  ];
  const onlyPrefix = prefixes.size === 1 && free.size === 0 && [...prefixes][0] !== '' ? [...prefixes][0] : null;
  const hint = onlyPrefix
    ? `every unmatched name in the file is the model's name after '${onlyPrefix}': try the key map {"${onlyPrefix}*": "*"}`
    : `rename or drop tensors with a key map ({"fc.weight": "linear.weight", "backbone.*": "*", "n_averaged": null})`;
  return new AtflowError(
    'DATA_FILE',
    `${source}: ${head.join('; ')}\n${table.join('\n')}\n${hint} (atflow eval --key-map, or loadWeights' keyMap; docs/models.md). ` +
      `The prefixes ${WRAPPER_PREFIXES.map(([p]) => `'${p}'`).join(', ')} are stripped already.`,
    { file: source, missing: [...missing], unexpected: unexpected.map((t) => t.name) },
  );
}

interface LoadPlan {
  /** model entry index → file tensor name */
  readonly sources: readonly string[];
  readonly notes: string[];
}

/**
 * Matches the file's tensors to the model's state_dict: the key map first, then wrapper prefixes are
 * stripped, then every name, dtype and shape is checked. Needs only the header.
 */
function planLoad(model: Model, fileTensors: readonly FileTensor[], source: string, keyMap: KeyMap): LoadPlan {
  checkKeyMap(keyMap);
  const entries = entriesOf(model);
  const expected = new Set(entries.map((e) => e.name));
  const target = new Map<string, string>(); // model name → file name
  const unexpected: FileTensor[] = [];
  const stripped = new Map<string, number>();
  let mapped = 0;
  let dropped = 0;
  const used = new Set<string>();
  for (const t of fileTensors) {
    let name: string | null | undefined = mapName(keyMap, t.name, used);
    if (name === undefined) {
      let s = t.name;
      for (let again = true; again && !expected.has(s);) {
        again = false;
        for (const [prefix] of WRAPPER_PREFIXES) {
          if (s.startsWith(prefix)) {
            s = s.slice(prefix.length);
            stripped.set(prefix, (stripped.get(prefix) ?? 0) + 1);
            again = true;
            break;
          }
        }
      }
      name = s !== t.name ? mapName(keyMap, s, used) : undefined;
      if (name === undefined) name = s;
      else mapped++;
    } else mapped++;
    if (name === null) {
      dropped++;
      continue;
    }
    if (!expected.has(name)) {
      unexpected.push(t); // listed under the file's own name
      continue;
    }
    const other = target.get(name);
    if (other !== undefined) {
      throw new AtflowError(
        'DATA_FILE',
        `${source}: tensors '${other}' and '${t.name}' both load into ` +
          `'${name}' of model '${model.name}': drop one with a key map ` +
          `({"${t.name}": null})`,
        {
          file: source,
          tensor: name,
        },
      );
    }
    target.set(name, t.name);
  }
  const missing = entries.map((e) => e.name).filter((n) => !target.has(n));
  if (missing.length > 0 || unexpected.length > 0) {
    const needed = entries.map(({ name, variable }) => ({ name, shape: torchShape(variable) }));
    throw mismatchError(model, source, needed, missing, unexpected);
  }
  const byName = new Map(fileTensors.map((t) => [t.name, t]));
  const converted = new Map<string, number>();
  for (const { name, variable } of entries) {
    const t = byName.get(target.get(name)!)!;
    const dtype = fileDtype(variable);
    const shape = torchShape(variable);
    const accepted = dtype === 'F32' ? FLOAT_DTYPES : ['I64', 'I32'];
    const label = t.name === name ? `tensor '${name}'` : `tensor '${t.name}' (for '${name}')`;
    if (!accepted.includes(t.dtype)) {
      throw new AtflowError(
        'DATA_FILE',
        `${source}: ${label} is ${t.dtype}, model '${model.name}' expects ` +
          (dtype === 'F32' ? `a float (${FLOAT_DTYPES.join(', ')})` : 'I64 (or I32)'),
        {
          file: source,
          tensor: t.name,
        },
      );
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new AtflowError(
        'DATA_FILE',
        `${source}: ${label} has shape ${shapeText(t.shape)}, model '${model.name}' expects ${shapeText(shape)} (PyTorch layout)`,
        {
          file: source,
          tensor: t.name,
          got: t.shape,
          expected: shape,
        },
      );
    }
    if (t.dtype !== dtype && t.dtype !== 'I32') converted.set(t.dtype, (converted.get(t.dtype) ?? 0) + 1);
  }
  const notes: string[] = [];
  for (const [prefix, count] of stripped) {
    const why = WRAPPER_PREFIXES.find(([p]) => p === prefix)![1];
    notes.push(`${source}: stripped the prefix '${prefix}' (${why}) from ${count} tensor name(s)`);
  }
  if (mapped > 0) notes.push(`${source}: the key map renamed ${mapped - dropped} tensor(s) and dropped ${dropped}`);
  const unused = Object.keys(keyMap).filter((k) => !used.has(k));
  if (unused.length > 0) notes.push(`${source}: key map entries that matched no tensor: ${listNames(unused)}`);
  for (const [from, count] of converted) {
    notes.push(
      `${source}: converted ${count} tensor(s) from ${from} to F32 on load ` +
        `(${from === 'F64' ? 'rounded to nearest, as PyTorch .float()' : 'exact widening'})`,
    );
  }
  return { sources: entries.map((e) => target.get(e.name)!), notes };
}

/** Copies planned tensors into the model's variables; nothing changes unless every tensor decodes. */
function applyPlan(model: Model, plan: LoadPlan, tensors: ReadonlyMap<string, SafetensorsTensor>, source: string): void {
  const decoded = entriesOf(model).map(({ variable }, i) => {
    const t = tensors.get(plan.sources[i])!;
    const shape = torchShape(variable);
    const values = fileDtype(variable) === 'F32' ? float32Values(t) : narrowInt(t, source);
    return { variable, shape, values };
  });
  tf.tidy(() => {
    for (const d of decoded) {
      const values = torchToTfValues(d.values, d.shape, layoutOf(d.variable));
      d.variable.assign(tf.tensor(values, d.variable.shape, d.variable.dtype));
    }
  });
}

/**
 * Loads tensors (PyTorch names and layouts) into the model. Wrapper prefixes ('module.', '_orig_mod.',
 * 'model.') are stripped, `options.keyMap` renames or drops, and F16 / BF16 / F64 become F32. Every name,
 * dtype and shape is checked before any variable changes, so a mismatching file leaves the model as it was.
 */
export function loadStateDict(
  model: Model,
  tensors: ReadonlyMap<string, SafetensorsTensor>,
  source: string,
  options: LoadOptions = {},
): LoadReport {
  const plan = planLoad(model, [...tensors.values()], source, options.keyMap ?? {});
  applyPlan(model, plan, tensors, source);
  return { notes: plan.notes };
}

function narrowInt(t: SafetensorsTensor, source: string): Int32Array {
  if (t.dtype === 'I32') return new Int32Array(new Uint8Array(t.data).buffer);
  const wide = new BigInt64Array(new Uint8Array(t.data).buffer);
  const out = new Int32Array(wide.length);
  for (let i = 0; i < wide.length; i++) {
    if (wide[i] > 2147483647n || wide[i] < -2147483648n) {
      throw new AtflowError(
        'DATA_FILE',
        `${source}: tensor '${t.name}' holds ${wide[i]}, beyond the int32 range atflow keeps counters in`,
        { file: source, tensor: t.name },
      );
    }
    out[i] = Number(wide[i]);
  }
  return out;
}

/**
 * Loads a safetensors file written by saveWeights or by PyTorch (`save_file(model.state_dict(), path)`),
 * as loadStateDict does. Reads the header first and then only the tensors the model takes.
 */
export function loadWeights(model: Model, file: string, options: LoadOptions = {}): LoadReport {
  const reader = openSafetensorsFile(file);
  try {
    const source = `checkpoint ${file}`;
    const plan = planLoad(model, [...reader.header.tensors.values()], source, options.keyMap ?? {});
    applyPlan(model, plan, reader.read(plan.sources), source);
    return { notes: plan.notes };
  } finally {
    reader.close();
  }
}
