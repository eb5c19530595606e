/** The start-up lines about hooks: what nettrace goes without on this kernel, and why. */
import { NativeHook } from '../native';

const PROVIDES: Record<string, string> = {
  state: 'state, connect and close events are',
  accept: 'accept events are',
  snapshot: 'the socket snapshot (nettrace flows, states and top) is',
};

/** One line per hook that is off; a fallback keeps its feature whole, so it is not news. */
export function hookReport(hooks: NativeHook[]): string[] {
  return hooks
    .filter((h) => h.status === 'unavailable' || h.status === 'disabled')
    .map((h) => `${PROVIDES[h.name] ?? `${h.name} is`} unavailable: ${h.status === 'disabled' ? `--disable ${h.name}` : h.detail}`);
}
