// `hearth serve` driven by the official openai client (major version 6), as users' tools drive it.
// Model: the shared stories260K (no chat template, so chats use hearth's plain format).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, metric } from './harness.mjs';

// The shared reference's greedy continuation of "Once upon a time" (64 tokens), from
// shared/README.md (produced by the reference implementation, not by hearth).
const REFERENCE_64 =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, ' +
  "red ball. She wanted to play with it, but it was too high.\nLily's mom said";
const MODEL_ID = 'stories260K-f32';

let server;
let client;

before(async () => {
  server = await startServer(['--parallel', '4', '--max-body', '1']);
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0, 'hearth serve exits cleanly on SIGTERM');
});

async function streamText(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

describe('models', () => {
  test('list and retrieve', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [MODEL_ID]);
    const m = await client.models.retrieve(MODEL_ID);
    assert.equal(m.id, MODEL_ID);
    assert.equal(m.object, 'model');
  });
  test('unknown model is 404', async () => {
    await assert.rejects(client.models.retrieve('nope'), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
    await assert.rejects(
      client.completions.create({ model: 'nope', prompt: 'x', max_tokens: 1 }),
      (e) => e.status === 404 && e.code === 'model_not_found' && e.param === 'model',
    );
  });
});

describe('completions', () => {
  test('greedy output matches the reference continuation', async () => {
    const r = await client.completions.create({ model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 64, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, REFERENCE_64);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 64);
    assert.equal(r.usage.prompt_tokens, 5); // BOS + 4 tokens (reference tokenization)
    assert.equal(r.usage.total_tokens, 69);
  });
  test('streamed text concatenates to the non-streamed text', async () => {
    const params = { model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 40, temperature: 0 };
    const full = await client.completions.create(params);
    const stream = await client.completions.create({ ...params, stream: true });
    let text = '';
    let finish = null;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, full.choices[0].text);
    assert.equal(finish, 'length');
  });
  test('stop strings end the output before the stop', async () => {
    const r = await client.completions.create({
      model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 64, temperature: 0, stop: ['Lily', 'zzz'],
    });
    assert.equal(r.choices[0].text, ', there was a little girl named ');
    assert.equal(r.choices[0].finish_reason, 'stop');
  });
  test('logprobs (completions form)', async () => {
    const r = await client.completions.create({
      model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logprobs: 2,
    });
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 3);
    assert.equal(lp.tokens.join(''), r.choices[0].text);
    for (let i = 0; i < 3; i++) {
      assert.ok(lp.token_logprobs[i] <= 0);
      const top = Object.entries(lp.top_logprobs[i]);
      assert.equal(top.length, 2);
      // Greedy: the chosen token is the most likely one.
      assert.equal(Math.max(...top.map(([, v]) => v)), lp.token_logprobs[i]);
    }
  });
});

describe('chat', () => {
  const messages = [
    { role: 'system', content: 'You tell short stories.' },
    { role: 'user', content: 'Tell me about a cat.' },
  ];
  test('non-streamed and streamed agree at temperature 0', async () => {
    const full = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 30, temperature: 0 });
    assert.equal(full.object, 'chat.completion');
    assert.equal(full.choices[0].message.role, 'assistant');
    assert.ok(full.choices[0].message.content.length > 0);
    assert.ok(full.id.startsWith('chatcmpl-'));
    const chunks = await streamText({ model: MODEL_ID, messages, max_tokens: 30, temperature: 0 });
    assert.equal(chunks[0].choices[0].delta.role, 'assistant', 'the role comes in the first delta');
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, full.choices[0].message.content);
    assert.equal(chunks.at(-1).choices[0].finish_reason, full.choices[0].finish_reason);
  });
  test('content-part arrays equal plain strings', async () => {
    const a = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 10, temperature: 0 });
    const b = await client.chat.completions.create({
      model: MODEL_ID,
      messages: messages.map((m) => ({ role: m.role, content: [{ type: 'text', text: m.content }] })),
      max_tokens: 10,
      temperature: 0,
    });
    assert.equal(b.choices[0].message.content, a.choices[0].message.content);
  });
  test('usage chunk with include_usage', async () => {
    const chunks = await streamText({
      model: MODEL_ID, messages, max_tokens: 8, temperature: 0, stream_options: { include_usage: true },
    });
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 8);
    assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + 8);
  });
  test('max_tokens gives finish_reason length', async () => {
    const r = await client.chat.completions.create({ model: MODEL_ID, messages, max_completion_tokens: 5, temperature: 0 });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 5);
  });
  test('context shift: a conversation longer than the context keeps the system prompt and the latest turns', async () => {
    const turns = [{ role: 'system', content: 'You tell stories about Lily.' }];
    for (let i = 0; i < 24; i++) {
      turns.push({ role: 'user', content: `Tell me part ${i} of the story about the little dog and the big red ball.` });
      turns.push({ role: 'assistant', content: `Part ${i}: the little dog ran to the park and played with the ball all day.` });
    }
    turns.push({ role: 'user', content: 'And then?' });
    const r = await client.chat.completions.create({ model: MODEL_ID, messages: turns, max_tokens: 32, temperature: 0 });
    assert.ok(r.usage.context_shift.dropped_messages > 0, JSON.stringify(r.usage));
    assert.ok(r.usage.prompt_tokens + 32 <= 512, JSON.stringify(r.usage));
    // The kept messages are the system prompt and the latest turns: sent alone, they need no
    // shift and give the same prompt and the same greedy reply.
    const kept = [turns[0], ...turns.slice(1 + r.usage.context_shift.dropped_messages)];
    const again = await client.chat.completions.create({ model: MODEL_ID, messages: kept, max_tokens: 32, temperature: 0 });
    assert.equal(again.usage.context_shift, undefined);
    assert.equal(again.usage.prompt_tokens, r.usage.prompt_tokens);
    assert.equal(again.choices[0].message.content, r.choices[0].message.content);
    // A short conversation is untouched.
    const short = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 4 });
    assert.equal(short.usage.context_shift, undefined);
    // One message that alone does not fit is still refused.
    await assert.rejects(
      client.chat.completions.create({ model: MODEL_ID, messages: [{ role: 'user', content: 'cat '.repeat(600) }] }),
      (e) => e.status === 400 && e.code === 'context_length_exceeded');
  });
  test('ignore_eos generates past the end-of-text token', async () => {
    // logit_bias makes </s> (id 2 in the llama2.c vocabulary) the greedy choice at every step:
    // without ignore_eos generation ends at once; with it, it runs on to max_tokens.
    const p = { model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 12, temperature: 0, logit_bias: { 2: 100 } };
    const plain = await client.completions.create(p);
    assert.equal(plain.choices[0].finish_reason, 'stop');
    assert.equal(plain.usage.completion_tokens, 0);
    const forced = await client.completions.create({ ...p, ignore_eos: true });
    assert.equal(forced.choices[0].finish_reason, 'length');
    assert.equal(forced.usage.completion_tokens, 12);
  });
  test('seed determinism', async () => {
    const p = { model: MODEL_ID, messages, max_tokens: 24, temperature: 1.0 };
    const a = await client.chat.completions.create({ ...p, seed: 42 });
    const b = await client.chat.completions.create({ ...p, seed: 42 });
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    const others = await Promise.all([1, 2, 3].map((seed) => client.chat.completions.create({ ...p, seed })));
    assert.ok(others.some((o) => o.choices[0].message.content !== a.choices[0].message.content),
      'different seeds give different samples');
  });
  test('n > 1 returns n choices', async () => {
    const r = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 12, temperature: 1, seed: 7, n: 3 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    const greedy = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 12, temperature: 0, n: 2 });
    assert.equal(greedy.choices[0].message.content, greedy.choices[1].message.content);
    assert.equal(greedy.usage.completion_tokens, 24);
  });
  test('logprobs (chat form)', async () => {
    const r = await client.chat.completions.create({
      model: MODEL_ID, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3,
    });
    const content = r.choices[0].logprobs.content;
    assert.equal(content.length, 6);
    assert.equal(content.map((t) => t.token).join(''), r.choices[0].message.content);
    for (const t of content) {
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
      assert.equal(t.top_logprobs[0].logprob, t.logprob, 'greedy picks the most likely token');
      assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
      assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
    }
  });
});

describe('constrained output', () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 },
      age: { type: 'integer' },
      happy: { type: 'boolean' },
      color: { enum: ['red', 'green', 'blue'] },
      friends: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 },
    },
    required: ['name', 'age', 'happy', 'color', 'friends'],
    additionalProperties: false,
  };
  for (const temperature of [0, 0.8]) {
    test(`json_schema output parses and validates (temperature ${temperature})`, async () => {
      const r = await client.chat.completions.create({
        model: MODEL_ID,
        messages: [{ role: 'user', content: 'Describe a girl as JSON.' }],
        max_tokens: 300,
        temperature,
        seed: 3,
        response_format: { type: 'json_schema', json_schema: { name: 'girl', schema, strict: true } },
      });
      assert.equal(r.choices[0].finish_reason, 'stop', r.choices[0].message.content);
      const v = JSON.parse(r.choices[0].message.content);
      assert.deepEqual(Object.keys(v).sort(), Object.keys(schema.properties).sort());
      assert.equal(typeof v.name, 'string');
      assert.ok([...v.name].length <= 12);
      assert.ok(Number.isInteger(v.age));
      assert.equal(typeof v.happy, 'boolean');
      assert.ok(['red', 'green', 'blue'].includes(v.color));
      assert.ok(Array.isArray(v.friends) && v.friends.length <= 3);
      for (const f of v.friends) assert.ok(typeof f === 'string' && [...f].length <= 8);
    });
  }
  test('json_object output is a JSON object', async () => {
    const r = await client.chat.completions.create({
      model: MODEL_ID, messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 200, temperature: 0,
      response_format: { type: 'json_object' },
    });
    if (r.choices[0].finish_reason === 'stop') {
      const v = JSON.parse(r.choices[0].message.content);
      assert.equal(typeof v, 'object');
      assert.ok(!Array.isArray(v) && v !== null);
    } else {
      assert.equal(r.choices[0].finish_reason, 'length'); // cut off: allowed by the contract
      assert.ok(r.choices[0].message.content.trimStart().startsWith('{'));
    }
  });
});

describe('embeddings and tokens', () => {
  test('embeddings (float and the client default base64)', async () => {
    const r = await client.embeddings.create({ model: MODEL_ID, input: ['a cat', 'a dog'] });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[0].embedding.length, 64); // n_embd of stories260K
    const norm = Math.hypot(...r.data[0].embedding);
    assert.ok(Math.abs(norm - 1) < 1e-3, `L2-normalised, got ${norm}`);
    const f = await client.embeddings.create({ model: MODEL_ID, input: 'a cat', encoding_format: 'float' });
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(f.data[0].embedding[i] - r.data[0].embedding[i]) < 1e-6);
    assert.ok(r.usage.prompt_tokens > 0);
  });
  test('tokenize and detokenize round-trip', async () => {
    const t = await (await fetch(`${server.base}/tokenize`, { method: 'POST', body: JSON.stringify({ content: 'Once upon a time' }) })).json();
    assert.equal(t.tokens.length, 4);
    const d = await (await fetch(`${server.base}/detokenize`, { method: 'POST', body: JSON.stringify({ tokens: t.tokens }) })).json();
    assert.equal(d.content, 'Once upon a time');
  });
});

describe('errors', () => {
  const shape = (body) => {
    assert.equal(typeof body.error.message, 'string');
    assert.equal(typeof body.error.type, 'string');
    assert.ok('param' in body.error && 'code' in body.error);
  };
  test('bad fields are 400 with the param named', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: MODEL_ID, messages: [{ role: 'user', content: 'x' }], temperature: 5 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature' && e.type === 'invalid_request_error',
    );
    await assert.rejects(
      client.chat.completions.create({ model: MODEL_ID, messages: [] }),
      (e) => e.status === 400 && e.param === 'messages',
    );
  });
  test('bad JSON, unknown route, too large body, long prompt', async () => {
    let r = await fetch(`${server.base}/v1/chat/completions`, { method: 'POST', body: '{nope' });
    assert.equal(r.status, 400);
    shape(await r.json());
    r = await fetch(`${server.base}/v1/nothing`);
    assert.equal(r.status, 404);
    shape(await r.json());
    r = await fetch(`${server.base}/v1/completions`, { method: 'POST', body: 'x'.repeat(2 << 20) });
    assert.equal(r.status, 413);
    shape(await r.json());
    await assert.rejects(
      client.completions.create({ model: MODEL_ID, prompt: 'cat '.repeat(600), max_tokens: 1 }),
      (e) => e.status === 400 && e.code === 'context_length_exceeded',
    );
  });
  test('invalid UTF-8 in the request becomes U+FFFD', async () => {
    const body = Buffer.concat([
      Buffer.from('{"prompt":"Once '), Buffer.from([0xff, 0xc3]), Buffer.from('","max_tokens":2,"temperature":0}'),
    ]);
    const r = await fetch(`${server.base}/v1/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 200);
    const t = await (await fetch(`${server.base}/tokenize`, { method: 'POST', body: Buffer.concat([Buffer.from('{"content":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')]) })).json();
    const d = await (await fetch(`${server.base}/detokenize`, { method: 'POST', body: JSON.stringify({ tokens: t.tokens }) })).json();
    assert.equal(d.content, '\uFFFD');
  });
});

describe('concurrency', () => {
  test('8 concurrent streams all complete', async () => {
    const runs = Array.from({ length: 8 }, (_, i) => streamText({
      model: MODEL_ID,
      messages: [{ role: 'user', content: `Story number ${i}` }],
      max_tokens: 24,
      temperature: 0,
    }));
    const results = await Promise.all(runs);
    for (const chunks of results) {
      assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');
      assert.ok(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('').length > 0);
    }
  });
  test('concurrent greedy requests equal the same request alone (batching does not change output)', async () => {
    const p = { model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 64, temperature: 0 };
    const many = await Promise.all(Array.from({ length: 4 }, () => client.completions.create(p)));
    for (const r of many) assert.equal(r.choices[0].text, REFERENCE_64);
  });
});

describe('health and metrics', () => {
  test('health and metrics', async () => {
    const h = await fetch(`${server.base}/health`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const text = await (await fetch(`${server.base}/metrics`)).text();
    for (const name of ['hearth_requests_total{', 'hearth_time_to_first_token_seconds_bucket', 'hearth_request_duration_seconds_bucket',
      'hearth_queue_depth', 'hearth_slots_active', 'hearth_kv_cache_usage_ratio', 'hearth_decode_tokens_per_second',
      'hearth_prompt_tokens_total', 'hearth_completion_tokens_total']) {
      assert.ok(text.includes(name), `metrics has ${name}`);
    }
  });
});
