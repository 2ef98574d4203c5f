// The chat page (GET /) in headless Chromium: it loads with no error and fetches nothing but
// the server itself, lists the served models, streams a reply that equals the non-streamed
// answer to the same request, stops a reply (the server stops generating), asks for an API key
// on a 401 and works once it is given, and shows a reply's HTML as text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, metric, MODEL } from '../server/harness.mjs';

const F32 = 'stories260K-f32';
const Q8 = 'stories260K-Q8_0';
const ARTIFACTS = process.env.HEARTH_ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-browser-'));

// Without the background-networking flags Chromium connects out (updates, safe browsing, ...);
// every request is checked below to go to the loopback server.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--no-default-browser-check',
];

let server;
let browser;
let profile;

before(async () => {
  // -c 4096 and one slot: long enough replies for Stop; the second model for the picker.
  server = await startServer([path.join(path.dirname(MODEL), `${Q8}.gguf`), '-c', '4096', '--parallel', '1']);
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-chromium-'));
  // A fresh profile directory (launchPersistentContext: Playwright refuses --user-data-dir in args).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.HEARTH_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1000, height: 700 },
  });
});
after(async () => {
  await browser?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  await server?.stop();
});

// A page with everything it does recorded: console errors, page errors, requests, failures.
async function openPage(base) {
  const page = await browser.newPage();
  const rec = { errors: [], requests: [], failed: [], responses: [] };
  page.on('console', (m) => { if (m.type() === 'error') rec.errors.push(m.text()); });
  page.on('pageerror', (e) => rec.errors.push(String(e)));
  page.on('request', (r) => rec.requests.push(r));
  page.on('requestfailed', (r) => rec.failed.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => rec.responses.push(r));
  await page.goto(`${base}/`);
  return { page, rec };
}

function assertLoopbackOnly(rec) {
  assert.ok(rec.requests.length > 0);
  for (const r of rec.requests) {
    const host = new URL(r.url()).hostname;
    assert.ok(host === '127.0.0.1' || host === 'localhost', `request to ${r.url()} leaves the machine`);
  }
}

async function screenshot(page, name) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

async function waitIdle(page) {
  await page.waitForFunction(() => document.body.dataset.state === 'idle', null, { timeout: 60000 });
}

// Records every distinct text of the newest assistant bubble as it changes (MutationObserver).
async function watchReply(page) {
  await page.evaluate(() => {
    window.__snapshots = [];
    const observer = new MutationObserver(() => {
      const bubbles = document.querySelectorAll('.msg.assistant .text');
      const text = bubbles.length ? bubbles[bubbles.length - 1].textContent : '';
      if (text && text !== window.__snapshots.at(-1)) window.__snapshots.push(text);
    });
    observer.observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
  });
}

// Types a message and sends it; returns once its bubble is on the page (the reply may still run).
async function send(page, text) {
  const users = await page.locator('.msg.user').count();
  await page.fill('#input', text);
  await page.click('#send');
  await page.waitForFunction((n) => document.querySelectorAll('.msg.user').length > n, users);
}

async function setSettings(page, { temperature, maxTokens, system }) {
  if (await page.isHidden('#settings')) await page.click('#settings-toggle');
  if (temperature !== undefined) await page.fill('#temperature', String(temperature));
  if (maxTokens !== undefined) await page.fill('#max-tokens', String(maxTokens));
  if (system !== undefined) await page.fill('#system', system);
}

const lastReply = (page) => page.locator('.msg.assistant .text').last().textContent();

test('the page and its files are served with a strict policy and an ETag', async () => {
  for (const [p, type] of [['/', 'text/html'], ['/ui/app.js', 'text/javascript'], ['/ui/style.css', 'text/css'],
    ['/ui/icon.svg', 'image/svg+xml']]) {
    const r = await fetch(`${server.base}${p}`);
    assert.equal(r.status, 200, p);
    assert.ok(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const csp = r.headers.get('content-security-policy');
    assert.match(csp, /(^|; )default-src 'self'(;|$)/);
    assert.match(csp, /(^|; )script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    const body = await r.text();
    if (p !== '/ui/icon.svg') assert.doesNotMatch(body, /https?:\/\//, `${p} names no other site`);
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{32}"$/);
    const again = await fetch(`${server.base}${p}`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), '');
  }
  assert.equal((await fetch(`${server.base}/ui/nothing.js`)).status, 404);
  assert.equal((await fetch(`${server.base}/ui/%2e%2e%2fserver.cpp`)).status, 404);  // only embedded names
});

test('--no-webui: / is a 404 again', async () => {
  const srv = await startServer(['--no-webui']);
  try {
    assert.equal((await fetch(`${srv.base}/`)).status, 404);
    assert.equal((await fetch(`${srv.base}/ui/app.js`)).status, 404);
    assert.equal((await fetch(`${srv.base}/health`)).status, 200);
  } finally {
    await srv.stop();
  }
});

test('the page loads with no error, lists both models and fetches only from the server', async () => {
  const { page, rec } = await openPage(server.base);
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
  const options = await page.$$eval('#model option', (os) => os.map((o) => o.value));
  assert.deepEqual(options, [F32, Q8]);
  assert.equal(await page.isHidden('#status'), true);
  await screenshot(page, 'loaded');
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, 'loaded-dark');
  await page.setViewportSize({ width: 400, height: 700 });
  await screenshot(page, 'loaded-narrow');
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(rec.failed, []);
  for (const r of rec.responses) assert.ok(r.status() < 400, `${r.url()}: ${r.status()}`);
  assertLoopbackOnly(rec);
  await page.close();
});

test('a reply streams into its bubble and equals the non-streamed answer', async () => {
  const { page, rec } = await openPage(server.base);
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
  await setSettings(page, { temperature: 0, maxTokens: 400 });
  await watchReply(page);
  await send(page, 'Once upon a time');
  assert.equal(await page.isDisabled('#send'), true);
  await waitIdle(page);
  const final = await lastReply(page);
  const snapshots = await page.evaluate(() => window.__snapshots);
  assert.ok(final.length > 0);
  assert.equal(snapshots.at(-1), final);
  const partial = snapshots.filter((s) => s !== final);
  console.log(`the reply was seen at ${snapshots.length} lengths before it ended (${final.length} characters)`);
  assert.ok(partial.length >= 2, `the reply grew in steps (${snapshots.length} snapshots)`);
  for (const s of partial) assert.ok(final.startsWith(s), 'each snapshot is a prefix of the reply');

  // The same request, not streamed, gives the same text (greedy).
  const sent = rec.requests.filter((r) => r.url().endsWith('/v1/chat/completions'));
  assert.equal(sent.length, 1);
  const body = JSON.parse(sent[0].postData());
  assert.equal(body.stream, true);
  assert.equal(body.model, F32);
  assert.equal(body.temperature, 0);
  assert.deepEqual(body.messages, [{ role: 'user', content: 'Once upon a time' }]);
  const plain = await (await fetch(`${server.base}/v1/chat/completions`, {
    method: 'POST', body: JSON.stringify({ ...body, stream: false }),
  })).json();
  assert.equal(final, plain.choices[0].message.content);
  await screenshot(page, 'streamed');

  // The next turn sends the conversation so far, with the system prompt first; the other model.
  await setSettings(page, { system: 'You tell short stories.', maxTokens: 16 });
  await page.selectOption('#model', Q8);
  await send(page, 'Tell me more');
  await waitIdle(page);
  const second = rec.requests.filter((r) => r.url().endsWith('/v1/chat/completions'))[1];
  const body2 = JSON.parse(second.postData());
  assert.equal(body2.model, Q8);
  assert.deepEqual(body2.messages, [
    { role: 'system', content: 'You tell short stories.' },
    { role: 'user', content: 'Once upon a time' },
    { role: 'assistant', content: final },
    { role: 'user', content: 'Tell me more' },
  ]);
  const reply2 = await lastReply(page);
  const plain2 = await (await fetch(`${server.base}/v1/chat/completions`, {
    method: 'POST', body: JSON.stringify({ ...body2, stream: false }),
  })).json();
  assert.equal(reply2, plain2.choices[0].message.content);

  // New chat empties the conversation.
  await page.click('#new-chat');
  assert.equal(await page.locator('.msg').count(), 0);
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(rec.failed, []);
  assertLoopbackOnly(rec);
  await page.close();
});

test('Stop ends the reply and the server stops generating', async () => {
  const { page, rec } = await openPage(server.base);
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
  const maxTokens = 3800;
  await setSettings(page, { temperature: 0, maxTokens });
  const tokensBefore = await metric(server, 'hearth_completion_tokens_total');
  await send(page, 'Once upon a time there was a very long story about');
  await page.waitForFunction(() => (document.querySelector('.msg.assistant .text')?.textContent.length ?? 0) > 20);
  await page.click('#stop');
  await waitIdle(page);
  assert.equal(await page.isDisabled('#stop'), true);
  assert.equal(await page.isEnabled('#send'), true);
  assert.equal(await page.locator('.msg.assistant .note').last().textContent(), 'stopped');
  const stopped = await lastReply(page);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await lastReply(page), stopped, 'the bubble does not grow after Stop');
  // The slot is free again, and the generation ended long before max_tokens.
  const deadline = Date.now() + 10000;
  while ((await metric(server, 'hearth_slots_active')) !== 0) {
    assert.ok(Date.now() < deadline, 'the slot was never freed');
    await new Promise((r) => setTimeout(r, 20));
  }
  const used = (await metric(server, 'hearth_completion_tokens_total')) - tokensBefore;
  assert.ok(used < maxTokens, `generation stopped early (${used} of ${maxTokens} tokens)`);
  assert.equal(rec.failed.length, 1, 'the aborted request is the only failed one');
  assert.match(rec.failed[0], /\/v1\/chat\/completions: net::ERR_ABORTED/);
  await screenshot(page, 'stopped');
  assertLoopbackOnly(rec);
  await page.close();
});

test('with --api-key the page shows the 401 and works once the key is entered', async () => {
  const srv = await startServer(['--api-key', 'sk-page-test']);
  try {
    const { page, rec } = await openPage(srv.base);
    await page.waitForSelector('#status:not([hidden])');
    const status = await page.textContent('#status');
    assert.match(status, /API key/);
    assert.match(status, /401/);
    assert.equal(await page.isVisible('#api-key'), true, 'the settings open on the key field');
    assert.equal(await page.locator('#model option').count(), 0);
    await screenshot(page, 'needs-key');

    await page.fill('#api-key', 'sk-page-test');
    await page.press('#api-key', 'Tab');  // leaving the field saves the key and loads the models
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    assert.equal(await page.isHidden('#status'), true);
    assert.equal(await page.evaluate(() => localStorage.getItem('hearth.apiKey')), 'sk-page-test');
    await setSettings(page, { temperature: 0, maxTokens: 8 });
    await send(page, 'Hello');
    await waitIdle(page);
    assert.ok((await lastReply(page)).length > 0);
    const chat = rec.requests.find((r) => r.url().endsWith('/v1/chat/completions'));
    assert.equal(chat.headers().authorization, 'Bearer sk-page-test');
    // The only errors are the 401's: Chromium logs the failed load of /v1/models.
    for (const e of rec.errors) assert.match(e, /401/);
    assertLoopbackOnly(rec);

    // A reload keeps the key (localStorage) and loads the models at once.
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    await page.close();
  } finally {
    await srv.stop();
  }
});

test('a reply is shown as text, never as HTML', async () => {
  const { page, rec } = await openPage(server.base);
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
  // A crafted stream in place of the server's: HTML split across events, LF and CRLF line
  // ends, a comment line, and an event whose JSON spans two data: lines (joined by "\n").
  const pieces = ['<img src=x onerror="window.__pwned=1">', ' <script>window.__pwned=2</script>',
    ' <b>bold</b> &amp; <a href="javascript:window.__pwned=3">link</a>'];
  const event = (content, end = '\n') =>
    `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] })}${end}${end}`;
  const split = event(pieces[2]).replace('"choices":', '\ndata: "choices":');
  const sse = `: a comment\n${event(pieces[0])}${event(pieces[1], '\r\n')}${split}` +
    `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`;
  await page.route('**/v1/chat/completions', (route) =>
    route.fulfill({ status: 200, contentType: 'text/event-stream', body: sse }));
  await send(page, 'Say something dangerous');
  await waitIdle(page);
  assert.equal(await lastReply(page), pieces.join(''));
  const bubble = page.locator('.msg.assistant').last();
  assert.equal(await bubble.locator('img, script, b, a').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.ok(!rec.requests.some((r) => new URL(r.url()).pathname === '/x'), 'no <img> was made');
  await screenshot(page, 'html-as-text');
  assert.deepEqual(rec.errors, []);
  assertLoopbackOnly(rec);
  await page.close();
});
