// API keys: required on every route but /health, per-key model lists and quotas (429).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer } from './harness.mjs';

const MODEL_ID = 'stories260K-f32';
let server;
let dir;
const make = (apiKey) => new OpenAI({ baseURL: `${server.base}/v1`, apiKey, maxRetries: 0 });

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-auth-'));
  const keyFile = path.join(dir, 'keys');
  fs.writeFileSync(keyFile, [
    '# test keys',
    'sk-limited rpm=2',
    'sk-other models=some-other-model',
    'sk-tokens tpm=10',
  ].join('\n'));
  server = await startServer(['--api-key', 'sk-admin', '--api-key-file', keyFile]);
});
after(async () => {
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a key is required on API routes, not on /health', async () => {
  const none = await fetch(`${server.base}/v1/models`);
  assert.equal(none.status, 401);
  assert.equal((await none.json()).error.code, 'invalid_api_key');
  await assert.rejects(make('sk-wrong').models.list(), (e) => e.status === 401 && e.code === 'invalid_api_key');
  assert.equal((await fetch(`${server.base}/metrics`)).status, 401);
  assert.equal((await fetch(`${server.base}/health`)).status, 200);
  const r = await make('sk-admin').chat.completions.create({
    model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2,
  });
  assert.equal(r.usage.completion_tokens, 2);
});

test('a key limited to other models sees 404', async () => {
  const c = make('sk-other');
  assert.deepEqual((await c.models.list()).data, []);
  await assert.rejects(c.completions.create({ model: MODEL_ID, prompt: 'x', max_tokens: 1 }), (e) => e.status === 404);
});

test('requests over the per-minute quota get 429 with Retry-After', async () => {
  const c = make('sk-limited');
  await c.models.list();
  await c.models.list();
  await assert.rejects(c.models.list(), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError);
    assert.ok(Number(e.headers.get('retry-after')) >= 1);
    return true;
  });
});

test('tokens over the per-minute quota get 429', async () => {
  const c = make('sk-tokens');
  await c.completions.create({ model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 8 }); // 13 tokens > 10
  await assert.rejects(c.completions.create({ model: MODEL_ID, prompt: 'x', max_tokens: 1 }), (e) => e.status === 429);
});
