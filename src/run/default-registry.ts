import { parsePluginRef, Registry } from '../config/registry';
import { registerBuiltins } from '../config/builtins';
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
