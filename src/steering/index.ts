export { SteeringMonitor } from './steering-monitor';
export { foldSteering, group } from './fold';
export { readSteeringConfig, maskCpus } from './config';
export type * from './types';
