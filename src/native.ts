/**
 * Loading the addons that `npm run build:native` makes: the tracer's (native/) and bench's load generator
 * (native/churn/, loaded only by bench). Their types are what napi-rs generates from the Rust code into each
 * one's index.d.ts, committed and checked by CI: the contract is written once, in Rust.
 */
import path from 'node:path';
import { NettraceError } from './errors';
// The generated file, from src/ as from dist/src/: the build copies it beside dist/ (scripts/copy-addon-types.js).
import type * as Tracing from '../native/index';

export type {
  ConntrackAnswer,
  ConntrackQuery,
  ConntrackTuple,
  KernelIds,
  NativeConntrack,
  NativeHook,
  NativeOptions,
  NativeRoute,
  NativeRoutes,
  NativeStats,
  NativeSteering,
  NativeTracer,
  ProgStats,
  RouteAnswer,
  RouteQuery,
} from '../native/index';

/** What the kernel checks before sending a record (TraceOptions.kernelFilter). */
export type KernelFilter = Tracing.NativeKernelFilter;

/** The tracer's addon as JavaScript sees it. */
export type NativeAddon = typeof Tracing;

/** An addon by its napi-rs binary name, and the folder its generated loader (index.js) is in. */
const ADDONS = { nettrace: 'native', 'nettrace-churn': 'native/churn' } as const;
export type AddonName = keyof typeof ADDONS;

const loaded = new Map<AddonName, unknown>();
let loader: ((name: AddonName) => unknown) | undefined;

/** Loads the addons another way: the single executable dlopens the copies it carries (scripts/sea-main.js). */
export function useNativeLoader(load: (name: AddonName) => unknown): void {
  loader = load;
}

/**
 * The addon `name`, loaded when first asked for; `what` names it in the error when it is missing. The type is
 * its generated index.d.ts, given by the caller.
 */
export function loadAddon<T>(name: AddonName, what: string): T {
  let addon = loaded.get(name);
  if (!addon) {
    if (loader) {
      addon = loader(name);
    } else {
      const where = path.join(__dirname, '..', '..', ADDONS[name], 'index.js');
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        addon = require(where);
      } catch (e) {
        const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
        throw new NettraceError('ENATIVE', `${what} is not built (run: npm run build): ${why}`);
      }
    }
    loaded.set(name, addon);
  }
  return addon as T;
}

/** The tracer's addon. */
export function native(): NativeAddon {
  return loadAddon<NativeAddon>('nettrace', 'the native addon');
}
