import * as fs from 'fs';
import { AtflowError, unknownName } from '../core/errors';
import { parsePluginRef, Registry, type PluginRef } from '../config/registry';
import { registerBuiltins } from '../config/builtins';
import { configureRun, unregisteredNames } from '../config/kinds';
import type { RunSpec } from '../config/spec';
import { BUILTIN_SINKS } from '../logs/sinks';

/** A registry with every built-in registered: the kinds below the run (config/builtins.ts) and the logs' sinks. */
export function defaultRegistry(): Registry {
  const registry = registerBuiltins(new Registry());
  return registry.asOrigin('builtin', () => {
    for (const [name, factory] of Object.entries(BUILTIN_SINKS)) registry.register('sink', name, factory);
  });
}

/** The default registry plus plugins given as 'module' or 'module#export' (the CLI's --plugin), resolved against `baseDir`. */
export function registryWithPlugins(plugins: readonly string[] = [], baseDir: string = process.cwd()): Registry {
  const registry = defaultRegistry();
  for (const p of plugins) {
    const ref = parsePluginRef(p, baseDir);
    registry.use(ref.module, ref.export);
  }
  return registry;
}

/**
 * The registry a finished run is rebuilt with (`atflow eval`, `atflow probe`): the default registry,
 * the plugins the run recorded in spec.json (`spec.meta.plugins`, absolute paths: plugins are trusted
 * code, loaded from where the run loaded them) and any given with --plugin. Every part `spec` names is
 * then checked, so a name no plugin registers is an error that says how to give the plugin.
 */
export function registryForRun(
  specFile: string,
  stored: Record<string, unknown>,
  spec: RunSpec,
  plugins: readonly string[] = [],
): Registry {
  const registry = registryWithPlugins(plugins);
  const recorded = ((stored.meta as { plugins?: PluginRef[] } | undefined)?.plugins ?? []).filter(
    (p) => typeof p?.module === 'string' && typeof p?.export === 'string',
  );
  for (const p of recorded) {
    if (!fs.existsSync(p.module)) {
      throw new AtflowError(
        'CONFIG',
        `${specFile}: the run was built with plugin ${p.module}#${p.export}, ` +
          `which is not there any more; pass it with --plugin <its path>#${p.export}`,
        {
          file: specFile,
          module: p.module,
        },
      );
    }
    registry.use(p.module, p.export);
  }
  const missing = unregisteredNames(spec, registry);
  if (missing.length && recorded.length === 0 && plugins.length === 0) {
    // a run folder from before runs recorded their plugins
    const names = missing.map((m) => unknownName(m.kind, m.name, registry.list(m.kind), m.field).message);
    throw new AtflowError(
      'UNKNOWN_NAME',
      `${specFile}: ${names.join('; ')}; if the run used a plugin, load it with --plugin <module>[#export]`,
      { file: specFile, missing },
    );
  }
  configureRun(spec, registry);
  return registry;
}
