/** atflow's public API. */
export * from './core/rng';
export * from './core/errors';
export * from './core/model';
export * from './core/batch';
export * from './core/records';
export * from './backend/select';
