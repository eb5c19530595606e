#!/usr/bin/env node
// Generates the protobuf code from proto/nettrace.proto (pbjs static module + pbts types): the JavaScript
// into dist/src/proto/, the types next to the TypeScript that imports them and next to the JavaScript.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const js = path.join(root, 'dist', 'src', 'proto', 'nettrace.pb.js');
const dts = path.join(root, 'src', 'proto', 'nettrace.pb.d.ts');

for (const f of [js, dts]) fs.mkdirSync(path.dirname(f), { recursive: true });
execFileSync(bin('pbjs'), ['-t', 'static-module', '-w', 'commonjs', '--keep-case', '-o', js, path.join(root, 'proto', 'nettrace.proto')], { stdio: 'inherit' });
execFileSync(bin('pbts'), ['-o', dts, js], { stdio: 'inherit' });
fs.copyFileSync(dts, path.join(path.dirname(js), 'nettrace.pb.d.ts'));
