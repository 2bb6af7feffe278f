import { AtflowError } from '../../src/core/errors';
import { createSource, SOURCE_NAMES } from '../../src/data';

describe('source registry', () => {
  it('lists every dataset', () => {
    expect([...SOURCE_NAMES].sort()).toEqual(['cifar10', 'cifar100', 'fashion-mnist', 'idx', 'mnist', 'svhn', 'synthetic']);
  });
  it('rejects an unknown name with a suggestion', () => {
    expect(() => createSource('cifar1O')).toThrow(AtflowError);
    expect(() => createSource('cifar1O')).toThrow(/unknown dataset 'cifar1O' \(did you mean 'cifar10'\?\)/);
  });
});
