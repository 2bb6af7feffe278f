export {
  makeLrSchedule,
  scheduleOptionsSchema,
  multistepScheduleEntry,
  stepScheduleEntry,
  cosineScheduleEntry,
  constantScheduleEntry,
  type LrSchedule,
  type LrScheduleSpec,
  type ScheduleOptions,
} from './lr-schedule';
export { teWeight, validateTeRamp, type TeRampSpec } from './te-weight';
export { epochSettings, type EpochSettings } from './epoch-schedule';
