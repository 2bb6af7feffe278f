import { makeLrSchedule } from '../../../src/algorithms/schedules/lr-schedule';

/** References printed by torch 2.13 (scheduler stepped once per epoch after training, lr read before each epoch). */
describe('learning-rate schedules (torch semantics, per epoch)', () => {
  it('multistep [100, 150], γ = 0.1 as MultiStepLR', () => {
    const s = makeLrSchedule({ type: 'multistep', lr: 0.1, milestones: [100, 150] });
    const torch: Record<number, number> = {
      1: 0.1,
      100: 0.1,
      101: 0.010000000000000002,
      150: 0.010000000000000002,
      151: 0.0010000000000000002,
      200: 0.0010000000000000002,
    };
    for (const [e, lr] of Object.entries(torch)) expect(s(Number(e))).toBeCloseTo(lr, 12);
  });

  it('step 100 as StepLR', () => {
    const s = makeLrSchedule({ type: 'step', lr: 0.1, stepSize: 100 });
    const torch: Record<number, number> = { 1: 0.1, 100: 0.1, 101: 0.01, 200: 0.01, 201: 0.001, 300: 0.001 };
    for (const [e, lr] of Object.entries(torch)) expect(s(Number(e))).toBeCloseTo(lr, 12);
  });

  it('cosine as CosineAnnealingLR(T_max) stepped per epoch', () => {
    const s = makeLrSchedule({ type: 'cosine', lr: 0.1, tMax: 200 });
    const torch: Record<number, number> = {
      1: 0.1,
      2: 0.09999383162408304,
      50: 0.08590631488815947,
      100: 0.05078536586559106,
      101: 0.050000000000000024,
      150: 0.01520436017038429,
      199: 2.4671981713420017e-5,
      200: 6.168375916970619e-6,
    };
    for (const [e, lr] of Object.entries(torch)) expect(s(Number(e))).toBeCloseTo(lr, 12);
    const s10 = makeLrSchedule({ type: 'cosine', lr: 0.1, tMax: 10, etaMin: 0.001 });
    const t10 = [
      0.1, 0.09757729755661011, 0.0905463412215599, 0.07959536998847742, 0.0657963412215599, 0.0505, 0.03520365877844011,
      0.02140463001152259, 0.010453658778440109, 0.0034227024433899004, 0.001, 0.0034227024433899004,
    ];
    t10.forEach((lr, i) => expect(s10(i + 1)).toBeCloseTo(lr, 12));
  });

  it('constant', () => {
    const s = makeLrSchedule({ type: 'constant', lr: 0.05 });
    expect([1, 50, 1000].map(s)).toEqual([0.05, 0.05, 0.05]);
  });

  it('rejects bad specs and epochs with named errors', () => {
    expect(() => makeLrSchedule({ type: 'multistep', lr: 0.1, milestones: [0] })).toThrow(/milestones\[0\]/);
    expect(() => makeLrSchedule({ type: 'bogus', lr: 0.1 } as any)).toThrow(/lrSchedule.type 'bogus'/);
    expect(() => makeLrSchedule({ type: 'constant', lr: 0.1 })(0)).toThrow(/1-based/);
  });
});
