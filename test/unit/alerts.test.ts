/** The alert rules in deploy/prometheus: valid for Prometheus's own checker, and each fires when it should (promtool's unit tests). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/paths';

const PROMTOOL = '/usr/bin/promtool';
const DIR = path.join(ROOT, 'deploy', 'prometheus');

test('promtool check rules and promtool test rules pass on deploy/prometheus/nettrace-rules.yml', () => {
  assert.ok(fs.existsSync(PROMTOOL), `${PROMTOOL} is missing: scripts/setup.sh --test installs Debian's prometheus`);
  const check = spawnSync(PROMTOOL, ['check', 'rules', 'nettrace-rules.yml'], { cwd: DIR, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /SUCCESS: 4 rules found/);
  const unit = spawnSync(PROMTOOL, ['test', 'rules', 'nettrace-rules.test.yml'], { cwd: DIR, encoding: 'utf8' });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  assert.match(unit.stdout, /SUCCESS/);
  // every alert of the file has a test case
  const rules = fs.readFileSync(path.join(DIR, 'nettrace-rules.yml'), 'utf8');
  const tests = fs.readFileSync(path.join(DIR, 'nettrace-rules.test.yml'), 'utf8');
  const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
  assert.equal(alerts.length, 4);
  for (const a of alerts) assert.match(tests, new RegExp(`alertname: ${a}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${a} has a firing test case`);
});
