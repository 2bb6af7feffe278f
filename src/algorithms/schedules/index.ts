export { makeLrSchedule, type LrSchedule, type LrScheduleSpec } from './lr-schedule';
export { teWeight, validateTeRamp, type TeRampSpec } from './te-weight';
export { epochSettings, type EpochSettings } from './epoch-schedule';
