// `hearth serve --draft-ngram` (speculative decoding with prompt-lookup drafts): greedy answers,
// streamed and not, equal the plain server's for the same requests, and /metrics counts the
// guesses the model kept. Model: the shared stories260K.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, metric } from './harness.mjs';

const MODEL_ID = 'stories260K-f32';
// Repeats itself, so prompt lookup has something to propose.
const PROMPT =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ' +
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. Once upon a time';

let plain;
let drafted;
const clients = {};

before(async () => {
  [plain, drafted] = await Promise.all([
    startServer(['--parallel', '2']),
    startServer(['--parallel', '2', '--draft-ngram', '--draft-max', '6']),
  ]);
  for (const [name, s] of [['plain', plain], ['drafted', drafted]]) {
    clients[name] = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  }
});
after(async () => {
  assert.equal(await plain.stop(), 0);
  assert.equal(await drafted.stop(), 0);
});

async function completion(client, params) {
  const r = await client.completions.create(params);
  return { text: r.choices[0].text, finish: r.choices[0].finish_reason, tokens: r.usage.completion_tokens };
}

async function streamedCompletion(client, params) {
  const stream = await client.completions.create({ ...params, stream: true });
  let text = '';
  let finish = null;
  for await (const c of stream) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish };
}

async function chat(client, params, stream) {
  if (!stream) {
    const r = await client.chat.completions.create(params);
    return { text: r.choices[0].message.content, finish: r.choices[0].finish_reason };
  }
  const s = await client.chat.completions.create({ ...params, stream: true });
  let text = '';
  let finish = null;
  for await (const c of s) {
    text += c.choices[0]?.delta?.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish };
}

test('greedy completions equal the plain server, streamed and not', async () => {
  const params = { model: MODEL_ID, prompt: PROMPT, max_tokens: 80, temperature: 0 };
  const want = await completion(clients.plain, params);
  assert.equal(want.finish, 'length');
  assert.equal(want.tokens, 80);
  assert.deepEqual(await completion(clients.drafted, params), want);
  assert.deepEqual(await streamedCompletion(clients.drafted, params), { text: want.text, finish: want.finish });
  // A stop string inside the repeated text ends both at the same place.
  const stopped = { ...params, stop: ['park'] };
  const wantStop = await completion(clients.plain, stopped);
  assert.deepEqual(await completion(clients.drafted, stopped), wantStop);
  assert.deepEqual(await streamedCompletion(clients.drafted, stopped), { text: wantStop.text, finish: wantStop.finish });
});

test('greedy chat completions equal the plain server, streamed and not', async () => {
  const params = { model: MODEL_ID, messages: [{ role: 'user', content: PROMPT }], max_tokens: 60, temperature: 0 };
  const want = await chat(clients.plain, params, false);
  assert.ok(want.text.length > 0);
  assert.deepEqual(await chat(clients.drafted, params, false), want);
  assert.deepEqual(await chat(clients.drafted, params, true), want);
  assert.deepEqual(await chat(clients.plain, params, true), want);
});

test('/metrics counts proposed and accepted drafts', async () => {
  const accepted = await metric(drafted, 'hearth_draft_tokens_accepted_total');
  const proposed = await metric(drafted, 'hearth_draft_tokens_proposed_total');
  assert.ok(accepted > 0, `accepted ${accepted}`);
  assert.ok(proposed >= accepted, `proposed ${proposed}, accepted ${accepted}`);
  assert.equal(await metric(plain, 'hearth_draft_tokens_proposed_total'), 0);
  assert.equal(await metric(plain, 'hearth_draft_tokens_accepted_total'), 0);
});
