/** Network namespaces the tests make, each with its loopback up; removed by removeNetns. */
import { execFileSync } from 'node:child_process';

export function makeNetns(name: string): void {
  removeNetns(name); // left by a killed run
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export function removeNetns(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // not there
  }
}
