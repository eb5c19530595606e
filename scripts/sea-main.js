// Entry of the single executable (release/nettrace, built by scripts/package.sh): esbuild bundles this file
// with dist/ into one script that Node runs from inside its own binary. The addons travel as SEA assets (the
// tracer's, and bench's load generator, each named by its napi-rs binary name); Node can only dlopen a file, so
// when one is first needed it is written to a private temporary directory, loaded, and removed at once (the
// mapping outlives the file), leaving nothing behind on any exit path.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const sea = require('node:sea');
const { NettraceError } = require('../dist/src/errors.js');
const { useNativeLoader } = require('../dist/src/native.js');

function loadAddon(name) {
  let dir;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nettrace-')); // mode 0700: no one else can swap the file
    const file = path.join(dir, `${name}.node`);
    fs.writeFileSync(file, new Uint8Array(sea.getAsset(`${name}.node`)), { mode: 0o500 });
    const module = { exports: {} };
    process.dlopen(module, file, os.constants.dlopen.RTLD_NOW);
    return module.exports;
  } catch (e) {
    const why = e && e.message ? e.message.split('\n')[0] : String(e);
    throw new NettraceError('ENATIVE', `cannot load the addon in ${os.tmpdir()} (TMPDIR must allow executables): ${why}`);
  } finally {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

try {
  useNativeLoader(loadAddon);
  require('../dist/src/cli/main.js').main();
} catch (e) {
  process.stderr.write(`nettrace: ${e && e.message ? e.message.split('\n')[0] : e}\n`);
  process.exit(1);
}
