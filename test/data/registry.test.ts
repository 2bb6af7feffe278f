import { AtflowError } from '../../src/core/errors';
import { createSource } from '../../src/config/builtins';
import { defaultRegistry } from '../../src/run/default-registry';

/** Sources are registry entries: the names are the registry's, and createSource looks them up there. */
const SOURCE_NAMES = defaultRegistry().list('source');

describe('source registry', () => {
  it('lists every dataset', () => {
    expect([...SOURCE_NAMES].sort()).toEqual(['cifar10', 'cifar100', 'fashion-mnist', 'idx', 'mnist', 'svhn', 'synthetic']);
  });
  it('rejects an unknown name with a suggestion', () => {
    expect(() => createSource('cifar1O')).toThrow(AtflowError);
    expect(() => createSource('cifar1O')).toThrow(
      /unknown source 'cifar1O' \(did you mean 'cifar10'\?\); registered sources: cifar10, cifar100, fashion-mnist, idx, mnist, svhn, synthetic/,
    );
  });
});
