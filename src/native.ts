/** The Rust addon, built by `npm run build:native` into native/. */
import path from 'node:path';
import { NettraceError } from './errors';

export interface NativeHook {
  name: string;
  status: 'attached' | 'fallback' | 'disabled' | 'unavailable';
  detail: string;
}

export interface NativeStats {
  records: number;
  bytes: number;
  batches: number;
  /** Records the ring buffer could not take. */
  drops: number;
  /** Hook runs the kernel skipped because the hook was already running on that CPU. */
  missed: number;
  /** Sockets the kernel-side table (LRU, maxSockets) dropped to make room; their later records lack an owner. */
  evictions: number;
}

export interface KernelFilter {
  family?: 4 | 6;
  pids?: number[];
  ports?: number[];
}

export interface NativeOptions {
  kernelFilter?: KernelFilter;
  ringBytes?: number;
  flushMs?: number;
  maxSockets?: number;
  disable?: string[];
}

export interface KernelIds {
  programs: number[];
  links: number[];
}

export interface NativeTracer {
  stop(): void;
  snapshot(): Buffer;
  snapshotUdp(): Buffer;
  udpPeers(): Buffer;
  stats(): NativeStats;
  readonly hooks: NativeHook[];
  readonly kernelIds: KernelIds;
}

export interface NativeAddon {
  NativeTracer: {
    open(options: NativeOptions, onBatch: (args: [Buffer, boolean]) => void): NativeTracer;
  };
  recordLayout(): { name: string; offset: number; size: number }[];
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (!addon) {
    const where = path.join(__dirname, '..', '..', 'native', 'index.js');
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = require(where) as NativeAddon;
    } catch (e) {
      const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
      throw new NettraceError('ENATIVE', `the native addon is not built (run: npm run build): ${why}`);
    }
  }
  return addon;
}
