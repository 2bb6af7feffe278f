import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';
import { createModel, saveWeights } from '../../src/models';
import { readSafetensorsFile } from '../../src/models/safetensors';

/**
 * `atflow eval <weights file>` on files that are large, damaged, not safetensors, or named differently,
 * through the bin behind a symlink named atflow (as npm installs it). Peak memory is the child's own
 * getrusage maxRSS, written at exit by a preload (NODE_OPTIONS=--require), against a baseline run of
 * the same command on a small bad file.
 */
const ROOT = path.join(__dirname, '..', '..');
let dir: string;
let atflow: string;
let rssProbe: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atflow-evalw-'));
  atflow = path.join(dir, 'atflow');
  fs.symlinkSync(path.join(ROOT, 'bin', 'atflow.js'), atflow);
  rssProbe = path.join(dir, 'rss-probe.js');
  fs.writeFileSync(
    rssProbe,
    "process.on('exit', () => require('fs').writeFileSync(process.env.RSS_OUT, String(process.resourceUsage().maxRSS)));\n",
  );
  await initBackend('cpu');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
  /** peak resident memory of the CLI process, MB */
  rssMB: number;
}

function evalCli(args: string[]): Result {
  const rssOut = path.join(dir, `rss-${Math.random().toString(36).slice(2)}`);
  const r = spawnSync(atflow, ['eval', ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: `--require ${rssProbe}`, RSS_OUT: rssOut },
  });
  const rssMB = fs.existsSync(rssOut) ? Number(fs.readFileSync(rssOut, 'utf8')) / 1024 : NaN;
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', rssMB };
}

/** A header (JSON, padded to 8) then `dataBytes` of data, of which only `written` are on disk: the rest is a hole. */
function sparseSafetensors(file: string, header: Record<string, unknown>, written: Uint8Array, dataBytes: number): void {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.alloc(8 + json.length);
  head.writeBigUInt64LE(BigInt(json.length), 0);
  head.write(json, 8, 'ascii');
  fs.writeFileSync(file, Buffer.concat([head, written]));
  fs.truncateSync(file, head.length + dataBytes);
}

/** An mlp (28×28×1, 10 classes) saved by atflow: its tensors, as a header fragment and bytes. */
function mlpTensors(): { header: Record<string, unknown>; bytes: Buffer; file: string } {
  const model = createModel('mlp', { numClasses: 10, inputShape: [28, 28, 1], seed: 4 });
  const file = path.join(dir, 'mlp.safetensors');
  saveWeights(model, file);
  model.dispose();
  const { tensors, metadata } = readSafetensorsFile(file);
  const header: Record<string, unknown> = { __metadata__: metadata };
  const parts: Buffer[] = [];
  let offset = 0;
  for (const t of tensors.values()) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    parts.push(Buffer.from(t.data));
    offset += t.data.byteLength;
  }
  return { header, bytes: Buffer.concat(parts), file };
}

const GB = 1e9;
/** The clean-accuracy line of the mlp's evaluation, to compare runs of the same weights under other names. */
let cleanLine = '';
const BARE = [
  '--model',
  'mlp',
  '--dataset',
  'mnist',
  '--eps',
  '0.1',
  '--n',
  '8',
  '--attacks',
  'apgd-ce',
  '--apgd-steps',
  '1',
  '--quiet',
  '--out',
  '',
];
const bare = (out: string) => BARE.map((a) => (a === '' ? out : a));

describe('atflow eval on large and damaged weights files (issue 24)', () => {
  let baselineMB: number;
  beforeAll(() => {
    const tiny = path.join(dir, 'tiny-bad.safetensors');
    fs.writeFileSync(tiny, Buffer.alloc(64));
    const r = evalCli([tiny, ...bare(dir)]);
    expect(r.status).toBe(2);
    baselineMB = r.rssMB;
    process.stdout.write(`eval on a 64-byte bad file: peak RSS ${baselineMB.toFixed(0)} MB\n`);
  });

  it('a 1.9 GB sparse file of zeros is refused from its first 8 bytes, without reading the rest', () => {
    const file = path.join(dir, 'zeros.safetensors');
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 1.9 * GB);
    const r = evalCli([file, ...bare(dir)]);
    process.stdout.write(
      `eval on a 1.9 GB sparse file: exit ${r.status}, peak RSS ${r.rssMB.toFixed(0)} MB (baseline ${baselineMB.toFixed(0)} MB)\n`,
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/zeros\.safetensors: header is not valid JSON/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.rssMB).toBeLessThan(baselineMB + 150);
  });

  it("a 1.9 GB file whose header lists another model's tensors: refused by name before any tensor is read", () => {
    const file = path.join(dir, 'other.safetensors');
    const n = 475_000_000;
    sparseSafetensors(file, { 'encoder.embed.weight': { dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] } }, new Uint8Array(0), 4 * n);
    const r = evalCli([file, ...bare(dir)]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /missing tensor\(s\) 'fc1\.weight', 'fc1\.bias', 'fc2\.weight', 'fc2\.bias', 'fc3\.weight' and 1 more that model 'mlp' needs/,
    );
    expect(r.stderr).toMatch(/encoder\.embed\.weight \[475000000\]/);
    expect(r.rssMB).toBeLessThan(baselineMB + 150);
  });

  it('a file over 2 GiB loads: only the tensors the model takes are read (the rest dropped with --key-map)', () => {
    const { header, bytes } = mlpTensors();
    const big = 2.2 * GB;
    header['ema.state'] = { dtype: 'U8', shape: [big], data_offsets: [bytes.length, bytes.length + big] };
    const file = path.join(dir, 'with-ema.safetensors');
    sparseSafetensors(file, header, bytes, bytes.length + big);
    expect(fs.statSync(file).size).toBeGreaterThan(2 ** 31);
    const r = evalCli([file, ...bare(path.join(dir, 'ev')), '--key-map', '{"ema.*": null}']);
    process.stdout.write(`eval on a 2.2 GB sparse file holding an mlp: exit ${r.status}, peak RSS ${r.rssMB.toFixed(0)} MB\n`);
    expect(r.stderr).toContain('the key map renamed 0 tensor(s) and dropped 1');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^with-ema\.safetensors, test n=8, linf ε=0\.1: clean \d+\.\d+%\n/);
    cleanLine = r.stdout.split('\n')[0].replace('with-ema', 'X');
    expect(r.rssMB).toBeLessThan(baselineMB + 300);
  });

  it('a FIFO (or any non-regular file) is refused at once instead of blocking', () => {
    const fifo = path.join(dir, 'pipe.safetensors');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const r = evalCli([fifo, ...bare(dir)]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/pipe\.safetensors: not a regular file \(a device, FIFO or socket\)/);
  });

  it('a PyTorch .pt (torch.save: a ZIP archive) gets how to convert it, not "implausible header length"', () => {
    // The first bytes torch.save writes: a ZIP local file header ("PK\x03\x04", version 0, flags 0x0808, stored),
    // then the archive/data.pkl entry (test/models/pytorch-checkpoints.test.ts uses a real torch.save file).
    const file = path.join(dir, 'model_best.pt');
    fs.writeFileSync(
      file,
      Buffer.concat([
        Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08, 0x08, 0x00, 0x00]),
        Buffer.from('archive/data.pkl'),
        Buffer.alloc(200),
      ]),
    );
    const r = evalCli([file, ...bare(dir)]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/model_best\.pt: a ZIP archive, which is what torch\.save writes/);
    expect(r.stderr).toMatch(
      /save_file\(\{k: v\.contiguous\(\) for k, v in sd\.get\('state_dict', sd\)\.items\(\)\}, 'model_best\.safetensors'\)/,
    );
    expect(r.stderr).not.toMatch(/implausible/);
  });
});

describe('atflow eval --key-map', () => {
  it('renames a checkpoint saved under other names, and says what it did', () => {
    const { header, bytes } = mlpTensors();
    const renamed: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(header)) renamed[k === '__metadata__' ? k : `net.${k.replace('fc3', 'head')}`] = v;
    const file = path.join(dir, 'renamed.safetensors');
    sparseSafetensors(file, renamed, bytes, bytes.length);
    const refused = evalCli([file, ...bare(dir)]);
    expect(refused.status).toBe(2);
    // the file's names beside the model's, with shapes
    expect(refused.stderr).toMatch(/model 'mlp' needs\s+the file holds \(not matched\)/);
    expect(refused.stderr).toMatch(/\n {2}fc1\.weight \[256, 784\]\s+net\.fc1\.weight \[256, 784\]\n/);
    expect(refused.stderr).toMatch(/\n {2}fc3\.bias \[10\]\s+-\n/);
    expect(refused.stderr).toMatch(/\n {2}-\s+net\.head\.bias \[10\]\n/);
    const mapFile = path.join(dir, 'map.json');
    fs.writeFileSync(mapFile, JSON.stringify({ 'net.head.*': 'fc3.*', 'net.*': '*' }));
    const r = evalCli([file, ...bare(path.join(dir, 'ev2')), '--key-map', mapFile]);
    expect(r.stderr).toContain('the key map renamed 6 tensor(s) and dropped 0');
    expect(r.status).toBe(0);
    // the same weights as the 2 GiB file's: the same clean accuracy
    expect(cleanLine).not.toBe('');
    expect(r.stdout.split('\n')[0].replace('renamed', 'X')).toBe(cleanLine);
  });

  it('bad key maps are named errors', () => {
    const file = path.join(dir, 'mlp.safetensors');
    const cases: [string, RegExp][] = [
      ['{"a*b": "c"}', /key map: "a\*b": "c" has a '\*' that is not the end of a prefix/],
      ['{not json', /--key-map: not valid JSON/],
    ];
    for (const [map, message] of cases) {
      const r = evalCli([file, ...bare(dir), '--key-map', map]);
      expect([map, r.status]).toEqual([map, 2]);
      expect(r.stderr).toMatch(message);
    }
  });
});
