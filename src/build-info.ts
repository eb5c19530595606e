// What this build is: written by scripts/build-info.js at build time, never by hand.
interface BuildInfo {
  version: string;
  commit: string;
  bpf: string;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const BUILD: BuildInfo = require('./build-info.json');

/** `nettrace --version`: the version, the git commit and the BPF object's SHA-256 (first 16 hex digits). */
export function versionLine(): string {
  return `nettrace ${BUILD.version} (commit ${BUILD.commit}, bpf sha256 ${BUILD.bpf.slice(0, 16)})`;
}
