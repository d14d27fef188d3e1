export { BreakwaterHealthIndicator } from './breakwater.health-indicator';
export type { BreakerIndicatorOptions } from './breakwater.health-indicator';
