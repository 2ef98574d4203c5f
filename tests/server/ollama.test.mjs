// `hearth serve` driven by the official ollama client (npm `ollama`), unchanged, as Ollama users'
// tools drive it; and CORS (off by default, --cors-origin).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { spawnSync } from 'node:child_process';
import { startServer, HEARTH } from './harness.mjs';

// The shared reference's greedy continuation of "Once upon a time" (shared/README.md), as in
// openai.test.mjs: produced by the reference implementation, not by hearth.
const REFERENCE_64 =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, ' +
  "red ball. She wanted to play with it, but it was too high.\nLily's mom said";
const NAME = 'stories260K-f32';

let server;
let ollama;

before(async () => {
  server = await startServer(['--parallel', '2']);
  ollama = new Ollama({ host: server.base });
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

describe('ollama client', () => {
  test('version, list, ps and show describe the served model', async () => {
    assert.match((await ollama.version()).version, /^\d+\.\d+\.\d+/);
    const list = await ollama.list();
    assert.equal(list.models.length, 1);
    assert.equal(list.models[0].name, `${NAME}:latest`);
    assert.equal(list.models[0].details.format, 'gguf');
    assert.equal(list.models[0].details.family, 'llama');
    assert.equal(list.models[0].details.quantization_level, 'F32');
    assert.ok(list.models[0].size > 1_000_000);
    const ps = await ollama.ps();
    assert.equal(ps.models[0].name, `${NAME}:latest`);
    assert.ok(ps.models[0].context_length > 0);
    const show = await ollama.show({ model: NAME });
    assert.equal(show.model_info['general.architecture'], 'llama');
    assert.equal(show.model_info['llama.block_count'], 5);
    assert.ok(show.capabilities.includes('completion'));
  });

  test('raw generate reproduces the reference continuation', async () => {
    const r = await ollama.generate({ model: NAME, prompt: 'Once upon a time', raw: true,
      options: { temperature: 0, num_predict: 64 } });
    assert.equal(r.response, REFERENCE_64);
    assert.equal(r.done, true);
    assert.equal(r.done_reason, 'length');
    assert.equal(r.eval_count, 64);
    assert.equal(r.prompt_eval_count, 5); // BOS + 4 tokens, as the reference's case file lists
    assert.ok(r.total_duration > 0 && r.eval_duration > 0);
  });

  test('streamed chat concatenates to the non-streamed chat, and ends with a done object', async () => {
    const req = { model: `${NAME}:latest`, messages: [{ role: 'user', content: 'Tell me about Lily.' }],
      options: { temperature: 0, num_predict: 24 } };
    const whole = await ollama.chat(req);
    assert.equal(whole.message.role, 'assistant');
    assert.equal(whole.eval_count, 24);
    const parts = [];
    let last;
    for await (const part of await ollama.chat({ ...req, stream: true })) {
      parts.push(part.message.content);
      last = part;
    }
    assert.ok(parts.length > 2, 'the reply comes in several lines');
    assert.equal(parts.join(''), whole.message.content);
    assert.equal(last.done, true);
    assert.equal(last.done_reason, 'length');
    assert.equal(last.eval_count, 24);
    assert.ok(last.prompt_eval_count > 5);
    for (const k of ['total_duration', 'prompt_eval_duration', 'eval_duration']) assert.ok(last[k] > 0, k);
    assert.ok(last.total_duration >= last.eval_duration);
  });

  test('options map onto sampling: stop strings and seeds', async () => {
    const r = await ollama.generate({ model: NAME, prompt: 'Once upon a time', raw: true, stream: false,
      options: { temperature: 0, num_predict: 64, stop: ['Lily'] } });
    assert.equal(r.response, ', there was a little girl named ');
    assert.equal(r.done_reason, 'stop');
    const a = await ollama.generate({ model: NAME, prompt: 'Once', raw: true,
      options: { temperature: 0.9, seed: 42, num_predict: 16 } });
    const b = await ollama.generate({ model: NAME, prompt: 'Once', raw: true,
      options: { temperature: 0.9, seed: 42, num_predict: 16 } });
    assert.equal(a.response, b.response);
  });

  test('format json constrains the reply', async () => {
    const r = await ollama.chat({ model: NAME, messages: [{ role: 'user', content: 'JSON' }], format: {
      type: 'object', properties: { name: { type: 'string', maxLength: 8 }, age: { type: 'integer' } },
      required: ['name', 'age'], additionalProperties: false }, options: { temperature: 0, num_predict: 80 } });
    const v = JSON.parse(r.message.content);
    assert.deepEqual(Object.keys(v).sort(), ['age', 'name']);
    assert.ok(Number.isInteger(v.age));
  });

  test('embed answers unit vectors, one per input', async () => {
    const r = await ollama.embed({ model: NAME, input: ['Lily and Ben', 'a big red ball'] });
    assert.equal(r.embeddings.length, 2);
    for (const e of r.embeddings) {
      assert.equal(e.length, 64);
      const norm = Math.sqrt(e.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-6, `norm ${norm}`);
    }
    assert.notDeepEqual(r.embeddings[0], r.embeddings[1]);
  });

  test('errors come back as Ollama errors', async () => {
    await assert.rejects(ollama.chat({ model: 'llama3:8b', messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e.status_code === 404 && /not found/.test(e.error));
    await assert.rejects(ollama.generate({ model: NAME, prompt: 'x', options: { num_predict: 'many' } }),
      (e) => e.status_code === 400 && /num_predict/.test(e.error));
    await assert.rejects(ollama.chat({ model: NAME, messages: [{ role: 'user', content: 'hi' }], keep_alive: '5 minutes' }),
      (e) => e.status_code === 400 && /keep_alive/.test(e.error));
    await assert.rejects(ollama.chat({ model: NAME, messages: [{ role: 'user', content: 'hi', images: ['AAAA'] }] }),
      (e) => e.status_code === 400 && /images/.test(e.error));
  });
});

describe('hearth ps and show', () => {
  test('list and describe what the running server has loaded', () => {
    const ps = spawnSync(HEARTH, ['ps', '--host', server.base], { encoding: 'utf8' });
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, /^NAME +SIZE +QUANT +CONTEXT +PROCESSOR\n/);
    assert.match(ps.stdout, new RegExp(`^${NAME}:latest +1\\.1 MB +F32 +\\d+ +100% CPU$`, 'm'));
    const show = spawnSync(HEARTH, ['show', NAME, '--json'], { encoding: 'utf8',
      env: { ...process.env, HEARTH_HOST: server.base } });
    assert.equal(show.status, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).model_info['llama.embedding_length'], 64);
    const missing = spawnSync(HEARTH, ['show', 'nope', '--host', server.base], { encoding: 'utf8' });
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /^error: .*404 model 'nope' not found/m);
    const down = spawnSync(HEARTH, ['ps', '--host', 'http://127.0.0.1:9'], { encoding: 'utf8' });
    assert.notEqual(down.status, 0);
    assert.match(down.stderr, /no hearth server answers at http:\/\/127\.0\.0\.1:9/);
  });
});

describe('CORS', () => {
  test('off by default: no Access-Control headers, preflight refused', async () => {
    const r = await fetch(`${server.base}/api/tags`, { headers: { Origin: 'http://page.test' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    const pre = await fetch(`${server.base}/api/chat`, { method: 'OPTIONS',
      headers: { Origin: 'http://page.test', 'Access-Control-Request-Method': 'POST' } });
    assert.notEqual(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
  });

  test('--cors-origin allows that origin only, preflight included, also for key errors', async () => {
    const s = await startServer(['--cors-origin', 'http://page.test', '--api-key', 'k1']);
    try {
      const pre = await fetch(`${s.base}/v1/chat/completions`, { method: 'OPTIONS',
        headers: { Origin: 'http://page.test', 'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization, content-type' } });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), 'http://page.test');
      assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
      const ok = await fetch(`${s.base}/api/tags`, { headers: { Origin: 'http://page.test', Authorization: 'Bearer k1' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), 'http://page.test');
      const denied = await fetch(`${s.base}/api/tags`, { headers: { Origin: 'http://page.test' } });
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get('access-control-allow-origin'), 'http://page.test');
      const other = await fetch(`${s.base}/api/tags`, { headers: { Origin: 'http://evil.test', Authorization: 'Bearer k1' } });
      assert.equal(other.headers.get('access-control-allow-origin'), null);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});
