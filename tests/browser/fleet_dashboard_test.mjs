// The controller's dashboard in headless Chromium, against real processes: `hearth fleet init`,
// Mosquitto with the configuration it wrote, `hearth controller`, and simulated nodes from
// `hearth fleet sim` (two groups, site=north and site=south). It signs in with the admin token,
// loads each view, starts rollouts from the form and watches the nodes change state without a
// reload, aborts one from the UI (the canary goes back to its previous model), and checks that
// no request leaves the loopback address. Screenshots of each view go to HEARTH_ARTIFACTS.
// Run by fleet_dashboard_run.mjs (CTest: browser_fleet_dashboard).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.HEARTH_BIN;
const MOSQUITTO = process.env.HEARTH_MOSQUITTO || '/usr/sbin/mosquitto';
const ARTIFACTS = process.env.HEARTH_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-dashboard-'));
const NORTH = 8;
const SOUTH = 4;
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--no-default-browser-check',
];

const procs = [];
let tmp;
let dir;
let base;
let ca;
let token;
let browser;
let profile;
const requests = [];  // every request any page of the browser made

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const digest = (text) => `sha256:${crypto.createHash('sha256').update(text).digest('hex')}`;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitTcp(port, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

function start(name, cmd, args) {
  const log = fs.openSync(path.join(tmp, `${name}.log`), 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', log, log] });
  procs.push(p);
  return p;
}

// The controller's API over HTTPS, trusting the fleet's own CA.
function apiCall(method, p, body, auth = token) {
  return new Promise((resolve, reject) => {
    const req = https.request(`${base}${p}`, {
      method, ca,
      headers: { ...(auth ? { Authorization: `Bearer ${auth}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: data,
        json: (() => { try { return JSON.parse(data); } catch { return null; } })() }));
    });
    req.on('error', reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

async function until(what, f, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function screenshot(page, name, fullPage = false) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  console.log(`screenshot: ${file}`);
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-dash-'));
  fs.chmodSync(tmp, 0o711);  // Mosquitto started as root drops to its own user
  dir = path.join(tmp, 'fleet');
  const [bport, cport] = [await freePort(), await freePort()];
  const init = spawnSync(BIN, ['fleet', 'init', dir, '--name', 'plant', '--controller-url', `https://127.0.0.1:${cport}`,
    '--broker-url', `mqtts://127.0.0.1:${bport}`, '--json'], { encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr + init.stdout);
  start('mosquitto', MOSQUITTO, ['-c', path.join(dir, 'broker', 'mosquitto.conf')]);
  await waitTcp(bport, 15000);
  start('controller', BIN, ['controller', '--fleet', dir]);
  await waitTcp(cport, 15000);
  base = `https://127.0.0.1:${cport}`;
  ca = fs.readFileSync(path.join(dir, 'ca', 'ca.crt'));
  token = fs.readFileSync(path.join(dir, 'controller', 'admin.token'), 'utf8').trim();
  const sim = ['fleet', 'sim', '--fleet', dir, '--telemetry-interval', '1', '--step-ms', '150', '--threads', '1',
    '--gate', 'decode_tok_s=24', '--gate', 'ttft_ms=40'];
  start('sim-north', BIN, [...sim, '--nodes', String(NORTH), '--prefix', 'north-', '--labels', 'site=north,tier=edge']);
  start('sim-south', BIN, [...sim, '--nodes', String(SOUTH), '--prefix', 'south-', '--labels', 'site=south,tier=store']);
  await until('the simulated nodes online', async () => {
    const r = await apiCall('GET', '/v1/nodes');
    return r.status === 200 && r.json.nodes.filter((n) => n.presence === 'online').length === NORTH + SOUTH;
  }, 40000);
  // Every node serves v1 first (through the API), so that a later abort has a model to go back to.
  const v1 = await apiCall('POST', '/v1/rollouts', { model: { reference: '127.0.0.1:5999/acme/stories:v1', digest: digest('v1') },
    batches: ['100%'], bake_seconds: 0, sources: ['http://127.0.0.1:5999'] });
  assert.equal(v1.status, 200, v1.text);
  await until('rollout v1 to succeed', async () => (await apiCall('GET', `/v1/rollouts/${v1.json.id}`)).json.state === 'succeeded');

  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.HEARTH_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    ignoreHTTPSErrors: true,  // the controller's certificate is from the fleet's own CA
  });
  browser.on('request', (r) => requests.push(r.url()));
});

after(async () => {
  await browser?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  for (const p of procs.reverse()) {
    if (p.exitCode === null) {
      p.kill('SIGTERM');
      await Promise.race([new Promise((r) => p.once('exit', r)), sleep(3000)]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  }
  if (tmp && !process.exitCode) fs.rmSync(tmp, { recursive: true, force: true });
});

async function openPage() {
  const page = await browser.newPage();
  const rec = { errors: [] };
  page.on('console', (m) => { if (m.type() === 'error') rec.errors.push(m.text()); });
  page.on('pageerror', (e) => rec.errors.push(String(e)));
  await page.goto(`${base}/`);
  return { page, rec };
}

async function signIn(page) {
  await page.fill('#token', token);
  await page.click('#login-form button[type="submit"]');
  await page.waitForSelector('#fleet-view:not([hidden])');
  await page.waitForFunction(() => document.body.dataset.live === 'on');
}

test('the files carry a strict policy; every data route needs the admin token', async () => {
  for (const [p, type] of [['/', 'text/html'], ['/dashboard/app.js', 'text/javascript'],
    ['/dashboard/style.css', 'text/css'], ['/dashboard/icon.svg', 'image/svg+xml']]) {
    const r = await apiCall('GET', p, null, null);
    assert.equal(r.status, 200, p);
    assert.ok(r.headers['content-type'].startsWith(type), `${p}: ${r.headers['content-type']}`);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    const csp = r.headers['content-security-policy'];
    assert.match(csp, /(^|; )default-src 'self'(;|$)/);
    assert.match(csp, /(^|; )script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    // The SVG namespace is a name, never fetched; no other URL may appear.
    const text = r.text.replaceAll('http://www.w3.org/2000/svg', '');
    assert.doesNotMatch(text, /https?:\/\//, `${p} names no other site`);
  }
  assert.equal((await apiCall('GET', '/dashboard/nothing.js', null, null)).status, 404);
  for (const p of ['/v1/dashboard/events', '/v1/dashboard/rollouts', '/v1/dashboard/audit',
    '/v1/nodes/north-00000/telemetry', '/v1/nodes']) {
    assert.equal((await apiCall('GET', p, null, null)).status, 401, p);
    assert.equal((await apiCall('GET', p, null, 'x'.repeat(48))).status, 401, p);
  }
  assert.equal((await apiCall('GET', '/v1/nodes/north-00000/telemetry?range=5')).status, 400);
  assert.equal((await apiCall('GET', '/v1/nodes/nobody/telemetry')).status, 404);
});

test('sign in, fleet view: every node, grouped by label, filtered by selector', async () => {
  const { page, rec } = await openPage();
  await page.fill('#token', 'not-the-token-' + 'x'.repeat(40));
  await page.click('#login-form button[type="submit"]');
  await page.waitForSelector('#login-error:not([hidden])');
  assert.match(await page.textContent('#login-error'), /refused/);
  // The one console error so far is the refused request itself.
  assert.deepEqual(rec.errors, ['Failed to load resource: the server responded with a status of 401 (Unauthorized)']);
  rec.errors.length = 0;
  await signIn(page);
  assert.equal(await page.evaluate(() => sessionStorage.length), 1);

  await page.waitForFunction((n) => document.querySelectorAll('#fleet-table tr[data-node]').length === n, NORTH + SOUTH);
  await page.selectOption('#group-by', 'site');
  const groups = await page.$$eval('#fleet-table tbody', (bs) => bs.map((b) => [b.dataset.group, b.querySelectorAll('tr[data-node]').length]));
  assert.deepEqual(groups, [['north', NORTH], ['south', SOUTH]]);
  // Presence, state and model of each row are what the API says.
  const api = (await apiCall('GET', '/v1/nodes')).json.nodes;
  for (const n of api) {
    const row = await page.$eval(`tr[data-node="${n.id}"]`, (tr) => [tr.dataset.presence, tr.dataset.state, tr.cells[3].textContent]);
    assert.deepEqual(row, [n.presence, n.state, 'acme/stories:v1']);
  }
  await page.fill('#selector', 'site=south');
  await page.waitForFunction((n) => document.querySelectorAll('#fleet-table tr[data-node]').length === n, SOUTH);
  assert.ok((await page.$$eval('#fleet-table tr[data-node]', (rs) => rs.map((r) => r.dataset.node))).every((id) => id.startsWith('south-')));
  await page.fill('#selector', '');
  await page.waitForFunction((n) => document.querySelectorAll('#fleet-table tr[data-node]').length === n, NORTH + SOUTH);
  await screenshot(page, 'dashboard-fleet');
  assert.deepEqual(rec.errors, []);
  await page.close();
});

// Starts a rollout with the form of the Rollouts view; returns its id (the page shows it).
async function startFromForm(page, { version, batches, bake, selector }) {
  await page.click('#nav a[data-nav="rollouts"]');
  await page.waitForSelector('#rollouts-view:not([hidden])');
  await page.click('#new-rollout > summary');
  await page.fill('#rollout-form [name="reference"]', `127.0.0.1:5999/acme/stories:${version}`);
  await page.fill('#rollout-form [name="digest"]', digest(version));
  await page.fill('#rollout-form [name="sources"]', 'http://127.0.0.1:5999');
  await page.fill('#rollout-form [name="selector"]', selector);
  await page.fill('#rollout-form [name="batches"]', batches);
  await page.fill('#rollout-form [name="bake"]', String(bake));
  await page.fill('#rollout-form [name="gates"]', 'decode_tok_s > 5\nttft_ms < 100');
  await page.click('#rollout-submit');
  await page.waitForFunction(() => /^#\/rollouts\/r-[0-9a-f]{12}$/.test(location.hash));
  const id = (await page.evaluate(() => location.hash)).slice('#/rollouts/'.length);
  await page.waitForSelector(`#rollout-detail h1:text("${id}")`);
  return id;
}

test('rollouts from the UI: nodes change state live, abort sends the canary back', async () => {
  const { page, rec } = await openPage();
  await page.evaluate(() => sessionStorage.clear());
  await page.reload();
  await signIn(page);
  await page.evaluate(() => { window.__sameDocument = true; });  // gone if the page reloads

  // v2 to the north, three batches with a short bake: each node's row turns serving live.
  const r2 = await startFromForm(page, { version: 'v2', batches: '1,50%,100%', bake: 1, selector: 'site=north' });
  const seen = new Set();
  await page.exposeFunction('__saw', (s) => seen.add(s));
  await page.evaluate(() => {
    new MutationObserver(() => {
      const n = document.querySelectorAll('#rollout-detail tr[data-state="serving"]').length;
      window.__saw(String(n));
    }).observe(document.getElementById('rollout-detail'), { childList: true, subtree: true });
  });
  await page.waitForSelector('#rollout-detail .rollout-head .badge.succeeded', { timeout: 30000 });
  assert.equal(await page.$$eval('#rollout-detail tr[data-node]', (rs) => rs.length), NORTH);
  assert.equal(await page.$$eval('#rollout-detail tr[data-state="serving"]', (rs) => rs.length), NORTH);
  // Intermediate counts were on the page (batch 1: the canary, then half, then all).
  assert.ok(seen.has('1') && seen.size >= 3, `serving counts seen: ${[...seen]}`);
  // Gate cells are compared with the thresholds: the sim reports decode_tok_s 24 (> 5) and TTFT 40 (< 100).
  const cells = await page.$$eval('#rollout-detail td.gate-val', (tds) => tds.map((td) => td.className));
  assert.ok(cells.length >= NORTH && cells.every((c) => c.includes('pass')), cells.join(' '));
  assert.ok(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded');

  // v3 with a long bake: the canary serves it, the batch bakes; abort from the UI.
  const r3 = await startFromForm(page, { version: 'v3', batches: '1,100%', bake: 600, selector: 'site=north' });
  await page.waitForSelector('#rollout-detail table[data-batch="0"] tr[data-state="serving"]', { timeout: 20000 });
  const canary = await page.$eval('#rollout-detail table[data-batch="0"] tr[data-node]', (tr) => tr.dataset.node);
  await screenshot(page, 'dashboard-rollout');
  page.once('dialog', (d) => d.accept());
  await page.click('#rollout-abort');
  await page.waitForSelector('#rollout-detail .rollout-head .badge.aborted');
  await page.waitForSelector(`#rollout-detail tr[data-node="${canary}"][data-state="rolled_back"]`);
  assert.equal(await page.isDisabled('#rollout-abort'), true);
  const later = await page.$$eval('#rollout-detail table[data-batch="1"] tr[data-node]', (rs) => rs.map((r) => r.dataset.state));
  assert.ok(later.every((s) => s === 'pending'), `batch 2 never started: ${later}`);
  // The API agrees, and the canary is told to serve v2 again; the Fleet view shows it.
  const status = (await apiCall('GET', `/v1/rollouts/${r3}`)).json;
  assert.equal(status.state, 'aborted');
  await until('the canary back on v2', async () => {
    const n = (await apiCall('GET', '/v1/nodes')).json.nodes.find((x) => x.id === canary);
    return n.serving?.digest === digest('v2') && n.state === 'serving';
  });
  await page.click('#nav a[data-nav="fleet"]');
  await page.waitForFunction((id) => document.querySelector(`tr[data-node="${id}"]`)?.cells[3].textContent === 'acme/stories:v2', canary);
  assert.ok(await page.evaluate(() => window.__sameDocument === true), 'the page reloaded');

  // The rollout list shows both, with their states.
  await page.click('#nav a[data-nav="rollouts"]');
  await page.waitForSelector(`#rollouts-table tr[data-rollout="${r2}"][data-state="succeeded"]`);
  await page.waitForSelector(`#rollouts-table tr[data-rollout="${r3}"][data-state="aborted"]`);

  // Node view: charts of its telemetry and its model history with the rollback's reason.
  await page.goto(`${base}/#/node/${canary}`);
  await page.waitForFunction(() => document.body.dataset.charts === 'ready');
  await page.click('#ranges button[data-range="900"]');
  await page.waitForFunction(() => document.querySelectorAll('#chart-toks path.line').length === 2);
  const rows = await page.$$eval('#history-table tbody tr', (trs) => trs.map((tr) => tr.textContent));
  assert.ok(rows.some((t) => t.includes('node_rolled_back') && t.includes(`rollout ${r3} aborted`)), rows.join('\n'));
  assert.ok(rows.some((t) => t.includes('desired_published') && t.includes('downgrade allowed')), rows.join('\n'));
  assert.ok(rows.some((t) => t.includes('desired_published') && t.includes(`for rollout ${r2}`)), rows.join('\n'));
  await screenshot(page, 'dashboard-node', true);

  // Audit: every decision, newest first, including the abort by the admin.
  await page.click('#nav a[data-nav="audit"]');
  await page.waitForSelector(`#audit-table tr[data-action="rollout_aborted"]`);
  const actions = await page.$$eval('#audit-table tr[data-action]', (trs) => trs.map((tr) => tr.dataset.action));
  for (const a of ['rollout_started', 'rollout_succeeded', 'rollout_aborted', 'node_rolled_back', 'node_enrolled', 'token_created'])
    assert.ok(actions.includes(a), `audit shows ${a}`);
  const ids = await page.$$eval('#audit-table tr[data-id]', (trs) => trs.map((tr) => Number(tr.dataset.id)));
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a));
  await page.fill('#audit-filter', 'rollout_aborted');
  assert.equal(await page.$$eval('#audit-table tr[data-action]', (trs) => trs.length), 1);
  await page.fill('#audit-filter', '');
  await screenshot(page, 'dashboard-audit');
  assert.deepEqual(rec.errors, []);
  await page.close();
});

test('the telemetry history: sums per time bucket that match what the nodes sent', async () => {
  // The sim sends decode 24 tok/s and TTFT p50 40 ms (p95 60) each second: every bucket averages exactly that.
  const r = await apiCall('GET', '/v1/nodes/south-00000/telemetry?range=900');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.step, 60);
  assert.ok(r.json.points.length >= 1);
  for (const p of r.json.points) {
    assert.ok(p.samples >= 1);
    assert.equal(p.decode_tok_s, 24);
    assert.equal(p.ttft_p50_ms, 40);
    assert.equal(p.ttft_p95_ms, 60);
    assert.equal(p.t % 60, 0);
  }
  const day = await apiCall('GET', '/v1/nodes/south-00000/telemetry?range=2592000');
  assert.equal(day.status, 200);
  assert.ok(day.json.step >= 3600 && day.json.points.length >= 1 && day.json.points.length <= 121);
});

test('no request left the loopback address', () => {
  assert.ok(requests.length > 10);
  for (const u of requests) {
    const { hostname, protocol } = new URL(u);
    assert.ok(hostname === '127.0.0.1' && protocol === 'https:', `request to ${u} leaves the machine`);
  }
});
