#!/usr/bin/env node
// Writes the ESM entry (dist/esm/index.mjs): it re-exports the CommonJS build by name, so
// `import { trace } from 'nettrace'` and `require('nettrace')` share one module instance.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const out = path.join(root, 'dist', 'esm');
const names = Object.keys(require(path.join(root, 'dist', 'src', 'index.js'))).filter((n) => n !== 'default' && n !== '__esModule');

fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(
  path.join(out, 'index.mjs'),
  `import nettrace from '../src/index.js';\nexport const { ${names.join(', ')} } = nettrace;\nexport default nettrace;\n`,
);
fs.writeFileSync(path.join(out, 'index.d.mts'), `export * from '../src/index.js';\n`);
