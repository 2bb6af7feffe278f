import * as fs from 'fs';
import * as path from 'path';

function packageVersion(name: string): string | null {
  try {
    const main = require.resolve(`${name}/package.json`);
    return JSON.parse(fs.readFileSync(main, 'utf8')).version ?? null;
  } catch {
    // packages whose exports map hides package.json: walk up from the resolved entry
    try {
      let dir = path.dirname(require.resolve(name));
      for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
        const p = path.join(dir, 'package.json');
        if (fs.existsSync(p)) {
          const pkg = JSON.parse(fs.readFileSync(p, 'utf8'));
          if (pkg.name === name) return pkg.version ?? null;
        }
      }
    } catch {
      // not installed
    }
    return null;
  }
}

let cached: Record<string, string | null> | null = null;

/** Versions recorded with every run (spec.json and the Parquet key-value metadata). */
export function runVersions(): Readonly<Record<string, string | null>> {
  cached ??= {
    atflow: packageVersion('atflow') ?? readOwnVersion(),
    node: process.versions.node,
    '@tensorflow/tfjs': packageVersion('@tensorflow/tfjs'),
    'apache-arrow': packageVersion('apache-arrow'),
    'parquet-wasm': packageVersion('parquet-wasm'),
    rxjs: packageVersion('rxjs'),
  };
  return cached;
}

function readOwnVersion(): string | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version ?? null;
  } catch {
    return null;
  }
}
