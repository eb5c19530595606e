#!/usr/bin/env node
'use strict';
try {
  require('../dist/src/cli/main.js').main();
} catch (e) {
  process.stderr.write(`nettrace: ${e && e.message ? e.message.split('\n')[0] : e}\n`);
  process.exit(1);
}
