// CTest entry point: node run.mjs HEARTH_BIN MODEL — runs every *.test.mjs with node:test.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [bin, model] = process.argv.slice(2);
if (!bin || !model) {
  console.error('usage: node run.mjs HEARTH_BIN MODEL');
  process.exit(2);
}
if (!fs.existsSync(path.join(here, 'node_modules', 'openai'))) {
  console.error('tests/server/node_modules/openai is missing: run scripts/setup.sh (or npm ci in tests/server)');
  process.exit(1);
}
if (!fs.existsSync(model)) {
  const msg = `test model ${model} not found (the shared data dir is missing)`;
  if (process.env.CI === 'true') {
    console.error(msg);
    process.exit(1);
  }
  console.log(`SKIP: ${msg}`);
  process.exit(0);
}
const files = fs.readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
  cwd: here,
  stdio: 'inherit',
  env: { ...process.env, HEARTH_BIN: path.resolve(bin), HEARTH_TEST_MODEL: path.resolve(model) },
});
process.exit(r.status ?? 1);
