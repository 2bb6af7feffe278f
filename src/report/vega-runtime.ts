import * as fs from 'fs';
import * as path from 'path';
import { AtflowError } from '../core/errors';

/**
 * Vega and Vega-Lite, loaded from their UMD bundles.
 *
 * vega 6 / vega-lite 6 / vega-embed 7 ship ESM only (`"type": "module"`), and vega's ESM graph has a
 * top-level await, so neither `require()` (Node's require(esm) refuses top-level await) nor a CommonJS
 * `import()` (ts → require; jest's VM has no dynamic import) can load them from this CommonJS project.
 * Their minified UMD bundles are self-contained: evaluated here as CommonJS, they give the same API,
 * and the very same files are inlined into the report so the browser runs the code that drew the
 * static SVG.
 */

export type VegaLiteSpec = Record<string, any>;

interface Bundles {
  readonly vega: any;
  readonly vegaLite: any;
}

let loaded: Bundles | undefined;
const sources = new Map<string, string>();

function bundleFile(pkg: string, file: string): string {
  // `require.resolve(pkg)` is the package's ESM entry in build/; the UMD bundles sit beside it
  return path.join(path.dirname(require.resolve(pkg)), file);
}

function bundleSource(pkg: string, file: string): string {
  const key = `${pkg}/${file}`;
  let src = sources.get(key);
  if (src === undefined) {
    try {
      src = fs.readFileSync(bundleFile(pkg, file), 'utf8');
    } catch (e) {
      throw new AtflowError(
        'IO',
        `report: cannot read ${pkg}'s bundle ${file} (is '${pkg}' installed? npm install): ${(e as Error).message}`,
      );
    }
    sources.set(key, src);
  }
  return src;
}

function evaluateUmd(src: string, deps: Record<string, unknown>): any {
  const module = { exports: {} as Record<string, unknown> };
  const requireDep = (name: string) => {
    if (!(name in deps)) throw new Error(`UMD bundle requires '${name}'`);
    return deps[name];
  };
  // the bundled module is code that vega ships: evaluated as CommonJS with its own require
  new Function('exports', 'module', 'require', 'define', src)(module.exports, module, requireDep, undefined);
  return module.exports;
}

function bundles(): Bundles {
  if (!loaded) {
    const vega = evaluateUmd(bundleSource('vega', 'vega.min.js'), {});
    const vegaLite = evaluateUmd(bundleSource('vega-lite', 'vega-lite.min.js'), { vega });
    loaded = { vega, vegaLite };
  }
  return loaded;
}

/** Versions of the bundles in use (shown in the report's footer). */
export function vegaVersions(): { vega: string; vegaLite: string } {
  const b = bundles();
  return { vega: b.vega.version, vegaLite: b.vegaLite.version };
}

/** Compiles a Vega-Lite spec to a Vega spec (throws with Vega-Lite's message on a bad spec). */
export function compileVegaLite(spec: VegaLiteSpec): Record<string, any> {
  return bundles().vegaLite.compile(spec).spec;
}

/**
 * Renders a Vega-Lite spec to a standalone SVG string with vega's headless View (no browser, no
 * canvas: text widths are vega's estimate, so the layout leaves room).
 */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const { vega } = bundles();
  const view = new vega.View(vega.parse(compileVegaLite(spec)), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * The three browser bundles as one inline script body (vega, vega-lite, vega-embed with its tooltip
 * handler), safe to place inside <script>…</script>.
 */
export function browserBundles(): string {
  return [
    bundleSource('vega', 'vega.min.js'),
    bundleSource('vega-lite', 'vega-lite.min.js'),
    bundleSource('vega-embed', 'vega-embed.min.js'),
  ]
    .map((s) => s.replace(/<\/script/gi, '<\\/script'))
    .join('\n;\n');
}
