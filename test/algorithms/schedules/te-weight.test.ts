import { TestScheduler } from 'rxjs/testing';
import { epochSettings } from '../../../src/algorithms/schedules/epoch-schedule';
import { makeLrSchedule } from '../../../src/algorithms/schedules/lr-schedule';
import { teWeight } from '../../../src/algorithms/schedules/te-weight';

const AUTHORS = { weight: 300, start: 90, end: 150 };

describe('TE weight ramp-up', () => {
  it('reproduces the docs/algorithms.md §5.3 table', () => {
    const table: [number, number][] = [
      [89, 0],
      [90, 2.0214],
      [95, 4.4924],
      [100, 9.3144],
      [101, 10.6873],
      [110, 32.5104],
      [120, 85.9514],
      [130, 172.126],
      [140, 261.0974],
      [149, 299.5836],
      [150, 300],
      [200, 300],
    ];
    for (const [t, w] of table) expect(teWeight(t, AUTHORS)).toBeCloseTo(w, 4);
    expect(teWeight(1, AUTHORS)).toBe(0);
  });

  it('is w·exp(−5) at the start and w after the end for any ramp', () => {
    expect(teWeight(3, { weight: 10, start: 3, end: 7 })).toBeCloseTo(10 * Math.exp(-5), 12);
    expect(teWeight(5, { weight: 10, start: 3, end: 7 })).toBeCloseTo(10 * Math.exp(-5 * 0.25), 12);
    expect(teWeight(8, { weight: 10, start: 3, end: 7 })).toBe(10);
    expect(() => teWeight(1, { weight: 1, start: 5, end: 4 })).toThrow(/te.end/);
  });
});

describe('epochSettings (marble)', () => {
  it('maps each epoch to its lr and TE weight, on time', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable }) => {
      const epochs = cold('a-b--c|', { a: 1, b: 3, c: 5 });
      const lr = makeLrSchedule({ type: 'multistep', lr: 0.1, milestones: [2, 4], gamma: 0.5 });
      const out = epochs.pipe(epochSettings(lr, { weight: 8, start: 3, end: 5 }));
      expectObservable(out).toBe('a-b--c|', {
        a: { epoch: 1, lr: 0.1, teWeight: 0 },
        b: { epoch: 3, lr: 0.05, teWeight: 8 * Math.exp(-5) },
        c: { epoch: 5, lr: 0.025, teWeight: 8 },
      });
    });
  });
});
