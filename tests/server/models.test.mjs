// Many models in one `hearth serve`: extra models load on their first request, LRU eviction
// over --max-models, keep-alive (the server's default and a request's), `hearth stop`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { startServer, HEARTH, MODEL } from './harness.mjs';

const DIR = path.dirname(MODEL);
const Q8 = path.join(DIR, 'stories260K-Q8_0.gguf');
const Q4 = path.join(DIR, 'stories260K-Q4_0.gguf');

let server;
let client;

before(async () => {
  server = await startServer([Q8, Q4, '--max-models', '2', '--keep-alive', '2s']);
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

async function loaded() {
  const ps = await (await fetch(`${server.base}/api/ps`)).json();
  return ps.models.map((m) => m.name).sort();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('every model is listed; only the first is loaded at start', async () => {
  const ids = (await client.models.list()).data.map((m) => m.id);
  assert.deepEqual(ids, ['stories260K-f32', 'stories260K-Q8_0', 'stories260K-Q4_0']);
  const tags = await (await fetch(`${server.base}/api/tags`)).json();
  assert.equal(tags.models.length, 3);
  assert.deepEqual(await loaded(), ['stories260K-f32:latest']);
});

test('an extra model loads on its first request and answers as the file does alone', async () => {
  const r = await client.completions.create({ model: 'stories260K-Q8_0', prompt: 'Once upon a time', max_tokens: 24,
    temperature: 0 });
  assert.equal(r.model, 'stories260K-Q8_0');
  const alone = spawnSync(HEARTH, ['run', Q8, '-p', 'Once upon a time', '--temp', '0', '-c', '512', '-n', '24'],
    { encoding: 'utf8' });
  assert.equal(alone.status, 0, alone.stderr);
  assert.equal(r.choices[0].text, alone.stdout.replace(/\n$/, ''));
  assert.deepEqual(await loaded(), ['stories260K-Q8_0:latest', 'stories260K-f32:latest']);
});

test('over --max-models the least recently used extra model is unloaded', async () => {
  await client.completions.create({ model: 'stories260K-Q4_0:latest', prompt: 'Once', max_tokens: 2 });
  assert.deepEqual(await loaded(), ['stories260K-Q4_0:latest', 'stories260K-f32:latest']);
  assert.match(server.log(), /unloading model 'stories260K-Q8_0' \(least recently used/);
});

test('keep_alive 0 unloads after the request; the default keep-alive unloads when idle', async () => {
  const r = await fetch(`${server.base}/api/generate`, { method: 'POST',
    body: JSON.stringify({ model: 'stories260K-Q4_0', prompt: 'Once', raw: true, stream: false, keep_alive: 0,
      options: { num_predict: 2 } }) });
  assert.equal(r.status, 200);
  await sleep(600);
  assert.deepEqual(await loaded(), ['stories260K-f32:latest']);
  await client.completions.create({ model: 'stories260K-Q8_0', prompt: 'Once', max_tokens: 2 });
  assert.deepEqual(await loaded(), ['stories260K-Q8_0:latest', 'stories260K-f32:latest']);
  await sleep(3000); // --keep-alive 2s
  assert.deepEqual(await loaded(), ['stories260K-f32:latest']);
});

test('hearth stop unloads an extra model; the first model stays', async () => {
  await client.completions.create({ model: 'stories260K-Q4_0', prompt: 'Once', max_tokens: 2 });
  const stop = spawnSync(HEARTH, ['stop', 'stories260K-Q4_0', '--host', server.base], { encoding: 'utf8' });
  assert.equal(stop.status, 0, stop.stderr);
  assert.equal(stop.stdout, 'stopped stories260K-Q4_0\n');
  assert.deepEqual(await loaded(), ['stories260K-f32:latest']);
  const again = spawnSync(HEARTH, ['stop', 'stories260K-Q4_0', '--host', server.base], { encoding: 'utf8' });
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /is not loaded/);
  const first = spawnSync(HEARTH, ['stop', 'stories260K-f32', '--host', server.base], { encoding: 'utf8' });
  assert.notEqual(first.status, 0);
  assert.match(first.stderr, /first model, which stays loaded/);
});

test('an unknown model is a 404 on both APIs', async () => {
  await assert.rejects(client.completions.create({ model: 'llama3:8b', prompt: 'x' }),
    (e) => e.status === 404 && e.code === 'model_not_found');
  const r = await fetch(`${server.base}/api/chat`, { method: 'POST',
    body: JSON.stringify({ model: 'llama3:8b', messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(r.status, 404);
});
