// CTest entry point: node fleet_dashboard_run.mjs HEARTH_BIN ARTIFACT_DIR — runs the fleet
// dashboard's tests (fleet_dashboard_test.mjs, node:test; named so that run.mjs, which runs the
// chat page's *.test.mjs, does not pick it up) in headless Chromium. Without Mosquitto, Chromium
// or playwright-core the run is skipped, or fails under CI=true (scripts/setup.sh installs them).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [bin, artifacts] = process.argv.slice(2);
if (!bin || !artifacts) {
  console.error('usage: node fleet_dashboard_run.mjs HEARTH_BIN ARTIFACT_DIR');
  process.exit(2);
}
const chromium = process.env.HEARTH_CHROMIUM || '/usr/bin/chromium';
const mosquitto = process.env.HEARTH_MOSQUITTO || '/usr/sbin/mosquitto';
const missing = [
  [fs.existsSync(chromium), `${chromium} not found: run scripts/setup.sh (apt package chromium)`],
  [fs.existsSync(mosquitto), `${mosquitto} not found: run scripts/setup.sh (apt package mosquitto)`],
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
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', 'fleet_dashboard_test.mjs'], {
  cwd: here,
  stdio: 'inherit',
  env: {
    ...process.env,
    HEARTH_BIN: path.resolve(bin),
    HEARTH_CHROMIUM: chromium,
    HEARTH_MOSQUITTO: mosquitto,
    HEARTH_ARTIFACTS: path.resolve(artifacts),
  },
});
process.exit(r.status ?? 1);
