import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { AtflowError } from '../core/errors';

/** Default root of dataset folders: $ATFLOW_DATA, else ./data. */
export function dataRoot(): string {
  return process.env.ATFLOW_DATA || 'data';
}

/**
 * The first of `dirs` (in order) that holds every file of one of the `layouts` (each a list of
 * alternative names per file: e.g. ['train-images-idx3-ubyte.gz', 'train-images-idx3-ubyte']).
 * Missing: an AtflowError naming every folder looked in and the expected file names.
 */
export function locateFiles(
  dataset: string,
  dirs: readonly string[],
  files: readonly (readonly string[])[],
): { dir: string; paths: string[] } {
  for (const dir of dirs) {
    const paths: string[] = [];
    for (const alternatives of files) {
      const found = alternatives.map((f) => path.join(dir, f)).find((p) => isFile(p));
      if (!found) break;
      paths.push(found);
    }
    if (paths.length === files.length) return { dir, paths };
  }
  const expected = files.map((alts) => alts.join(' or ')).join(', ');
  const looked = dirs.map((d) => `${d}${fs.existsSync(d) ? '' : ' (does not exist)'}`).join(', ');
  throw new AtflowError('DATA_FILE', `${dataset}: data files not found in ${looked}; expected ${expected} (see docs/datasets.md)`, {
    dataset,
    dirs: [...dirs],
    expected: files.map((a) => [...a]),
  });
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** A whole file; gzip is recognised by its magic bytes (1f 8b), not by the name, and inflated. */
export function readDataFile(file: string): Uint8Array {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e: any) {
    throw new AtflowError('DATA_FILE', `${file}: cannot read (${e?.code ?? e?.message ?? e})`, { file });
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (e: any) {
      throw new AtflowError('DATA_FILE', `${file}: gzip data is corrupt or truncated (${e?.message ?? e})`, { file });
    }
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

export function dataFileError(file: string, message: string, details: Record<string, unknown> = {}): AtflowError {
  return new AtflowError('DATA_FILE', `${path.basename(file)}: ${message} (${file})`, { file, ...details });
}
