// A client that goes away mid-stream frees its slot within a step; so does one that hangs up
// while waiting for a non-streamed response.
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

test('a non-streamed request whose client hangs up is cancelled', async () => {
  // A long context, so that the abandoned request would run for seconds.
  const srv = await startServer(['--parallel', '1', '-c', '4096']);
  try {
    const c = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'unused', maxRetries: 0 });
    const maxTokens = 4000;
    const ac = new AbortController();
    const pending = fetch(`${srv.base}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: maxTokens, temperature: 0, ignore_eos: true }),
      signal: ac.signal,
    });
    // Hang up once it is generating.
    const deadline = Date.now() + 10000;
    while ((await metric(srv, 'hearth_slots_active')) !== 1) {
      assert.ok(Date.now() < deadline, 'the request never started');
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await assert.rejects(pending);
    // With one slot, this request can only run once the abandoned one has left it.
    const t0 = Date.now();
    const r = await c.completions.create({ prompt: 'Hello', max_tokens: 4, temperature: 0 });
    const waited = Date.now() - t0;
    assert.equal(r.usage.completion_tokens, 4);
    const used = (await metric(srv, 'hearth_completion_tokens_total')) - 4;
    assert.ok(used < maxTokens / 2,
      `the abandoned request stopped early (generated ${used} of ${maxTokens} tokens, next request waited ${waited} ms)`);
    assert.equal(await metric(srv, 'hearth_slots_active'), 0);
    const text = await (await fetch(`${srv.base}/metrics`)).text();
    assert.match(text, /^hearth_requests_total\{route="\/v1\/completions",status="499"\} 1$/m);
  } finally {
    await srv.stop();
  }
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
