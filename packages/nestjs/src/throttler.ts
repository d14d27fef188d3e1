export { BreakwaterThrottlerStorage } from './throttler-storage';
export type {
  BreakwaterThrottlerStorageOptions,
  ThrottlerStorageRecord,
} from './throttler-storage';
