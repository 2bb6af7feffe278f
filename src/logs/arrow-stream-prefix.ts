import * as arrow from 'apache-arrow';
import * as fs from 'fs';
import { AtflowError } from '../core/errors';
import { arrowSchema, type ColumnDef } from './columns';

/**
 * Reading back what an Arrow IPC stream file holds, for a resumed run that keeps some of its rows: the
 * whole messages at its start, up to the end-of-stream marker or up to a torn tail (a process killed
 * while writing a batch leaves a partial message, which is left out), and its record batches filtered
 * by epoch as framed messages ready to be written after a new schema message.
 */

/** One framed IPC message (continuation marker, metadata length, metadata, body), as bytes. */
interface Framed {
  readonly bytes: Uint8Array;
  readonly message: arrow.Message;
}

/** A record batch message to copy into a rewritten stream, and its row count. */
export interface CarriedBatch {
  readonly message: Uint8Array;
  readonly rows: number;
}

const CONTINUATION = 0xffffffff;
const EOS = Uint8Array.of(255, 255, 255, 255, 0, 0, 0, 0);

/** Whole messages of a stream read through `read(position, length)` (fewer bytes at the end of the data). */
function* framedMessages(read: (position: number, length: number) => Uint8Array): Generator<Framed> {
  let at = 0;
  for (;;) {
    const prefix = read(at, 8);
    if (prefix.length < 4) return;
    const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.length);
    // streams since Arrow 0.15 start each message with 0xFFFFFFFF; older ones with the length alone
    const continued = view.getUint32(0, true) === CONTINUATION;
    if (continued && prefix.length < 8) return;
    const lengthBytes = continued ? 8 : 4;
    const metaLength = view.getInt32(continued ? 4 : 0, true);
    if (metaLength <= 0) return; // end-of-stream marker (or garbage)
    const meta = read(at + lengthBytes, metaLength);
    if (meta.length < metaLength) return;
    let message: arrow.Message;
    try {
      message = arrow.Message.decode(meta);
    } catch {
      return; // a torn metadata block
    }
    const total = lengthBytes + metaLength + message.bodyLength;
    const bytes = read(at, total);
    if (bytes.length < total) return;
    yield { bytes, message };
    at += total;
  }
}

function fileReader(fd: number, size: number): (position: number, length: number) => Uint8Array {
  return (position, length) => {
    const n = Math.max(0, Math.min(length, size - position));
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const got = fs.readSync(fd, out, done, n - done, position + done);
      if (got === 0) break;
      done += got;
    }
    return done === n ? out : out.subarray(0, done);
  };
}

function bufferReader(buf: Uint8Array): (position: number, length: number) => Uint8Array {
  return (position, length) => buf.subarray(position, Math.min(buf.length, position + length));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const fieldKey = (f: arrow.Field) => `${f.name}: ${String(f.type)}`;

/**
 * The record batches of the stream `file` restricted to rows whose `epoch` satisfies `keep`, as framed
 * messages in their order. A batch kept whole is copied byte for byte; a batch with some rows kept is
 * re-encoded from slices. `defs` are the columns the stream must have (a stream of other columns is
 * refused: its batches would not fit the new schema message). A missing, empty or torn-at-the-schema
 * file holds nothing to keep.
 */
export function* keptBatches(file: string, defs: readonly ColumnDef[], keep: (epoch: number) => boolean): Generator<CarriedBatch> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new AtflowError('IO', `cannot read ${file}: ${(e as Error).message}`, { path: file });
  }
  try {
    const messages = framedMessages(fileReader(fd, fs.fstatSync(fd).size));
    const first = messages.next();
    if (first.done || !first.value.message.isSchema()) return;
    const schemaFrame = first.value.bytes;
    const have = (first.value.message.header() as arrow.Schema).fields.map(fieldKey);
    const want = arrowSchema(defs).fields.map(fieldKey);
    if (have.join('\n') !== want.join('\n')) {
      throw new AtflowError(
        'RESUME',
        `${file}: its columns (${have.join(', ')}) are not this atflow's (${want.join(', ')}); remove the file to resume`,
        { path: file },
      );
    }
    for (const { bytes, message } of messages) {
      if (!message.isRecordBatch()) continue;
      const batches = arrow.tableFromIPC(concat(schemaFrame, bytes, EOS)).batches;
      const kept = batches.flatMap((b) => keptSlices(b, keep));
      if (batches.length === 1 && kept.length === 1 && kept[0] === batches[0]) {
        yield { message: bytes, rows: kept[0].numRows };
        continue;
      }
      for (const slice of kept) {
        const encoded = framedMessages(bufferReader(arrow.tableToIPC(new arrow.Table([slice]), 'stream')));
        for (const m of encoded) if (m.message.isRecordBatch()) yield { message: m.bytes, rows: slice.numRows };
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The runs of consecutive rows of `b` to keep, as slices (`b` itself when every row is kept). */
function keptSlices(b: arrow.RecordBatch, keep: (epoch: number) => boolean): arrow.RecordBatch[] {
  const epoch = b.getChild('epoch');
  if (!epoch) return [b];
  const out: arrow.RecordBatch[] = [];
  let start = -1;
  for (let i = 0; i <= b.numRows; i++) {
    const k = i < b.numRows && keep(Number(epoch.get(i)));
    if (k && start < 0) start = i;
    if (!k && start >= 0) {
      out.push(start === 0 && i === b.numRows ? b : b.slice(start, i));
      start = -1;
    }
  }
  return out;
}
