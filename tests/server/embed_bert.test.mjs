// An embedding model (bert) behind `hearth serve`: /v1/embeddings equals the reference's pooled
// vectors (normalised), and generation is refused with a clear 400. (That a long input is
// evaluated whole is checked in engine_unit_test, SchedulerEncoder, against a one-pass oracle.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, MODEL } from './harness.mjs';

const SHARED = path.dirname(path.dirname(MODEL));
const BERT = path.join(SHARED, 'models', 'synth', 'synth-bert-f32.gguf');

let server;
let client;

before(async () => {
  server = await startServer(['--parallel', '2'], { model: BERT });
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  assert.equal(await server.stop(), 0);
});

function reference(caseName) {
  const meta = JSON.parse(fs.readFileSync(path.join(SHARED, 'reference', `synth-bert-f32__${caseName}.json`), 'utf8'));
  const buf = fs.readFileSync(path.join(SHARED, 'reference', meta.pooled_file));
  const v = Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return { meta, unit: v.map((x) => x / norm) };
}

const maxDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

test('pooled embeddings equal the reference (normalised)', async () => {
  const cases = ['once-upon-a-time', 'little-dog-happy', 'lily-and-ben'];
  const refs = cases.map(reference);
  const r = await client.embeddings.create({ model: 'synth-bert-f32', input: refs.map((x) => x.meta.prompt),
    encoding_format: 'float' });
  assert.equal(r.data.length, 3);
  assert.equal(r.usage.prompt_tokens, refs.reduce((s, x) => s + x.meta.n_prompt, 0));
  for (let i = 0; i < 3; i++) {
    assert.equal(r.data[i].embedding.length, 128);
    assert.ok(maxDiff(r.data[i].embedding, refs[i].unit) < 1e-4, `${cases[i]}: ${maxDiff(r.data[i].embedding, refs[i].unit)}`);
  }
});

test('generation is refused with a clear 400', async () => {
  await assert.rejects(client.completions.create({ model: 'synth-bert-f32', prompt: 'Once', max_tokens: 4 }),
    (e) => e.status === 400 && /embedding model/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'synth-bert-f32', messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e.status === 400 && /embedding model/.test(e.message));
});

test('the Ollama embed route gives unit vectors', async () => {
  const r = await (await fetch(`${server.base}/api/embed`, { method: 'POST',
    body: JSON.stringify({ model: 'synth-bert-f32', input: reference('lily-and-ben').meta.prompt }) })).json();
  assert.ok(maxDiff(r.embeddings[0], reference('lily-and-ben').unit) < 1e-4);
});
