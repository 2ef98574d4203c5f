// A client that goes away mid-stream frees its slot within a step.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, metric } from './harness.mjs';

let server;
let client;
before(async () => {
  server = await startServer(['--parallel', '1', '--max-queue', '2']);
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await server.stop(); });

test('a client disconnect frees the slot', async () => {
  const before = await metric(server, 'hearth_completion_tokens_total');
  const stream = await client.completions.create({
    model: 'stories260K-f32', prompt: 'Once upon a time', max_tokens: 480, temperature: 0, stream: true,
  });
  let n = 0;
  for await (const c of stream) {
    if (++n === 3) break; // leaving the loop aborts the HTTP request
  }
  // With one slot, this request can only run once the aborted one has left it.
  const t0 = Date.now();
  const r = await client.completions.create({ model: 'stories260K-f32', prompt: 'Hello', max_tokens: 4, temperature: 0 });
  assert.equal(r.usage.completion_tokens, 4);
  const used = (await metric(server, 'hearth_completion_tokens_total')) - before - 4;
  assert.ok(used < 480, `the aborted stream stopped early (generated ${used} of 480 tokens, next request waited ${Date.now() - t0} ms)`);
  assert.equal(await metric(server, 'hearth_slots_active'), 0);
});

test('a full queue is 503 with Retry-After', async () => {
  // --parallel 1 and --max-queue 2: one running and two waiting; the rest are refused.
  const p = { model: 'stories260K-f32', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 };
  const results = await Promise.allSettled(Array.from({ length: 12 }, () =>
    fetch(`${server.base}/v1/completions`, { method: 'POST', body: JSON.stringify(p) })));
  const statuses = results.map((r) => r.value.status);
  const refused = results.filter((r) => r.value.status === 503);
  assert.ok(refused.length > 0, `some requests are refused: ${statuses}`);
  assert.equal(refused[0].value.headers.get('retry-after'), '1');
  assert.equal((await refused[0].value.json()).error.code, 'queue_full');
  assert.ok(statuses.every((s) => s === 200 || s === 503));
});
