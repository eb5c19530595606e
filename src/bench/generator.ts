/**
 * The connection-churn generator (native/churn/): an addon apart from the tracer's, loaded only here, when
 * `nettrace bench churn` first runs a round. Its types are the ones napi-rs generates (native/churn/index.d.ts).
 */
import { loadAddon } from '../native';
// The generated file, from src/bench/ as from dist/src/bench/ (the build copies it: scripts/copy-addon-types.js).
import type * as Churn from '../../native/churn/index';

export type { ChurnOptions, ChurnRun, ChurnSample } from '../../native/churn/index';

export function churnGenerator(): typeof Churn {
  return loadAddon<typeof Churn>('nettrace-churn', 'the load generator addon');
}
