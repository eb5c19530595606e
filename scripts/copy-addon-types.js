#!/usr/bin/env node
// Puts the addons' generated types (native/index.d.ts, native/churn/index.d.ts) at dist/native/ too. src/native.ts
// imports them as '../native/index', and tsc keeps that path as written in dist/src/native.d.ts, where it points
// into dist/: without this copy the library's own declarations would name a file that is not there.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
for (const file of [path.join('native', 'index.d.ts'), path.join('native', 'churn', 'index.d.ts')]) {
  const to = path.join(root, 'dist', file);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(path.join(root, file), to);
}
