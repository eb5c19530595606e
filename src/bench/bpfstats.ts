/** kernel.bpf_stats_enabled, switched on for a measurement and put back as it was. */
import { readFileSync, writeFileSync } from 'node:fs';

const KNOB = '/proc/sys/kernel/bpf_stats_enabled';

/** Turns the kernel's BPF run-time statistics on; returns what restores the previous setting (idempotent). */
export function enableBpfStats(): () => void {
  const was = readFileSync(KNOB, 'utf8').trim();
  try {
    if (was !== '1') writeFileSync(KNOB, '1');
  } catch (e) {
    throw new Error(`cannot switch on kernel.bpf_stats_enabled to measure BPF run time (needs root): ${(e as Error).message}`);
  }
  let restored = false;
  return () => {
    if (restored || was === '1') return;
    restored = true;
    writeFileSync(KNOB, was);
  };
}
