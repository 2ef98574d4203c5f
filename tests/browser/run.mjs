// CTest entry point: node run.mjs HEARTH_BIN MODEL ARTIFACT_DIR — runs the chat page's tests
// (*.test.mjs, node:test) in headless Chromium. Without the model, Chromium or playwright-core
// the run is skipped, or fails under CI=true (scripts/setup.sh installs all three).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [bin, model, artifacts] = process.argv.slice(2);
if (!bin || !model || !artifacts) {
  console.error('usage: node run.mjs HEARTH_BIN MODEL ARTIFACT_DIR');
  process.exit(2);
}
const chromium = process.env.HEARTH_CHROMIUM || '/usr/bin/chromium';
const missing = [
  [fs.existsSync(model), `test model ${model} not found (the shared data dir is missing)`],
  [fs.existsSync(chromium), `${chromium} not found: run scripts/setup.sh (apt package chromium)`],
  [fs.existsSync(path.join(here, 'node_modules', 'playwright-core')),
    'tests/browser/node_modules/playwright-core is missing: run scripts/setup.sh (or npm ci in tests/browser)'],
].filter(([ok]) => !ok).map(([, msg]) => msg);
if (missing.length > 0) {
  if (process.env.CI === 'true') {
    for (const m of missing) console.error(m);
    process.exit(1);
  }
  for (const m of missing) console.log(`SKIP: ${m}`);
  process.exit(0);
}
fs.mkdirSync(artifacts, { recursive: true });
const files = fs.readdirSync(here).filter((f) => f.endsWith('.test.mjs')).sort();
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
  cwd: here,
  stdio: 'inherit',
  env: {
    ...process.env,
    HEARTH_BIN: path.resolve(bin),
    HEARTH_TEST_MODEL: path.resolve(model),
    HEARTH_CHROMIUM: chromium,
    HEARTH_ARTIFACTS: path.resolve(artifacts),
  },
});
process.exit(r.status ?? 1);
