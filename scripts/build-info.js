#!/usr/bin/env node
// Writes dist/src/build-info.json, what `nettrace --version` names: the package version, the git commit built
// and the SHA-256 of the BPF object the addon embeds, so a binary found on a host can be traced to its sources.
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

function commit() {
  try {
    // tracked files only: the build writes untracked ones
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    return git('rev-parse', '--short=12', 'HEAD') + (dirty ? '-dirty' : '');
  } catch {
    return 'unknown'; // built outside a git checkout
  }
}

const out = path.join(root, 'dist', 'src', 'build-info.json');
const info = {
  version: require(path.join(root, 'package.json')).version,
  commit: commit(),
  bpf: crypto.createHash('sha256').update(fs.readFileSync(path.join(root, 'bpf', 'nettrace.bpf.o'))).digest('hex'),
};
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify(info) + '\n');
