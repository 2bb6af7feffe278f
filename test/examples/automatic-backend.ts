import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../src/backend/select';

/**
 * The backend a run folder records (spec.json) beside the one atflow chooses by itself here
 * (ATFLOW_BACKEND, else tensorflow where it is built, else wasm): the examples must not force one.
 */
export async function ranOnAutomaticBackend(runDir: string): Promise<{ ran: string; automatic: string }> {
  const ran = JSON.parse(fs.readFileSync(path.join(runDir, 'spec.json'), 'utf8')).backend.name as string;
  return { ran, automatic: (await initBackend()).name };
}
