/** The start-up lines about hooks: what nettrace goes without on this kernel, and why. */
import { NativeHook } from '../native';

const PROVIDES: Record<string, string> = {
  state: 'state, connect and close events are',
  accept: 'accept events are',
  snapshot: 'the socket snapshot (nettrace flows, states and top) is',
};

/** Hooks whose fallback loses part of what they give: what is lost, and what still works. */
const PARTIAL: Record<string, [string, string]> = {
  udp: ['UDP open and close events are', 'UDP sockets are still counted and listed'],
};

/** Why the best way was passed over: "(unavailable: WAY: WHY)" at the end of a fallback's detail. */
const fallbackReason = (detail: string) => /\(unavailable: (?:[^:]*: )?(.*)\)$/.exec(detail)?.[1] ?? detail;

/** One line per hook that is off, or whose fallback gives less; a fallback that keeps its feature whole is not news. */
export function hookReport(hooks: NativeHook[]): string[] {
  return hooks.flatMap((h) => {
    if (h.status === 'unavailable' || h.status === 'disabled') {
      return [`${PROVIDES[h.name] ?? `${h.name} is`} unavailable: ${h.status === 'disabled' ? `--disable ${h.name}` : h.detail}`];
    }
    const partial = PARTIAL[h.name];
    return h.status === 'fallback' && partial ? [`${partial[0]} unavailable: ${fallbackReason(h.detail)}; ${partial[1]}`] : [];
  });
}
