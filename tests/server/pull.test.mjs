// /api/pull and /api/delete through the official ollama client, against a real registry peer
// (`hearth registry serve`, the OCI Distribution API v2 over a publisher's store): a signed model
// from a trusted publisher is pulled with progress, verified and served; an untrusted one is
// refused; files are never nameable; delete drops a model from the server and the store; and
// `--models-from-store` serves what the store holds.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ollama } from 'ollama';
import { startServer, HEARTH, MODEL } from './harness.mjs';

// The shared reference's greedy continuation of "Once upon a time" (as in ollama.test.mjs):
// produced by the reference implementation, not by hearth.
const REFERENCE_64 =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, ' +
  "red ball. She wanted to play with it, but it was too high.\nLily's mom said";

let root, publisher, client, registry, mirror;

function hearth(home, args) {
  const r = spawnSync(HEARTH, args, { env: { ...process.env, HEARTH_HOME: home }, encoding: 'utf8' });
  assert.equal(r.status, 0, `hearth ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
}

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-pull-'));
  publisher = path.join(root, 'publisher');
  client = path.join(root, 'client');
  // The publisher signs acme/stories:v1 with its key, and evil/stories:v1 with another key.
  hearth(publisher, ['import', MODEL, 'acme/stories:v1']);
  hearth(publisher, ['import', MODEL, 'evil/stories:v1']);
  hearth(publisher, ['keygen', '--out', path.join(root, 'acme')]);
  hearth(publisher, ['keygen', '--out', path.join(root, 'evil')]);
  hearth(publisher, ['sign', 'acme/stories:v1', '--key', path.join(root, 'acme.key')]);
  hearth(publisher, ['sign', 'evil/stories:v1', '--key', path.join(root, 'evil.key')]);
  // The client trusts acme's key for acme/*, and nothing else.
  hearth(client, ['trust', 'add', path.join(root, 'acme.pub'), '--models', 'acme/*', '--name', 'acme']);
  registry = spawn(HEARTH, ['registry', 'serve', '--listen', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HEARTH_HOME: publisher } });
  mirror = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`registry did not start: ${out}`)), 20000);
    registry.stdout.on('data', (d) => {
      out += d.toString();
      const m = out.match(/at (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
});

after(() => {
  registry?.kill('SIGTERM');
  fs.rmSync(root, { recursive: true, force: true });
});

describe('pull and delete', () => {
  let server, ollama;
  before(async () => {
    server = await startServer([], { env: { HEARTH_HOME: client, HEARTH_MIRRORS: mirror } });
    ollama = new Ollama({ host: server.base });
  });
  after(async () => { assert.equal(await server.stop(), 0); });

  test('a trusted model is pulled with progress, then served', async () => {
    const lines = [];
    for await (const p of await ollama.pull({ model: 'acme/stories:v1', stream: true })) lines.push(p);
    assert.equal(lines[0].status, 'pulling manifest');
    assert.equal(lines.at(-1).status, 'success');
    // The weights blob's last progress line: every byte of it (the file's size) arrived.
    const size = fs.statSync(MODEL).size;
    const weights = lines.filter((l) => l.digest && l.total === size);
    assert.ok(weights.length >= 1, JSON.stringify(lines));
    assert.equal(weights.at(-1).completed, size);
    assert.ok(lines.some((l) => l.status === 'verifying sha256 digest'));
    const names = (await ollama.list()).models.map((m) => m.name);
    assert.ok(names.includes('acme/stories:v1'), names.join(', '));
    const r = await ollama.generate({ model: 'acme/stories:v1', prompt: 'Once upon a time', raw: true,
      options: { temperature: 0, num_predict: 64 } });
    assert.equal(r.response, REFERENCE_64);
    assert.match(server.log(), /signed by acme/);
    // Pulling what is served already succeeds at once.
    assert.equal((await ollama.pull({ model: 'acme/stories:v1', stream: false })).status, 'success');
  });

  test('a model signed by an untrusted key is refused, and not served', async () => {
    await assert.rejects(ollama.pull({ model: 'evil/stories:v1', stream: false }), (e) => {
      assert.equal(e.status_code, 403, e.message);
      assert.match(e.message, /evil\/stories:v1/);
      return true;
    });
    // Streamed, the refusal is the stream's last line, which the client raises.
    await assert.rejects(async () => {
      for await (const p of await ollama.pull({ model: 'evil/stories:v1', stream: true })) void p;
    }, /evil\/stories:v1/);
    assert.ok(!(await ollama.list()).models.some((m) => m.name.startsWith('evil/')));
    await assert.rejects(ollama.generate({ model: 'evil/stories:v1', prompt: 'x' }), (e) => e.status_code === 404);
  });

  test('a model no registry has is a 404, and a file path is never a model name', async () => {
    await assert.rejects(ollama.pull({ model: 'acme/nothing:v9', stream: false }), (e) => e.status_code === 404);
    for (const name of ['/etc/passwd', './secret.gguf', MODEL]) {
      await assert.rejects(ollama.pull({ model: name, stream: false }), (e) => {
        assert.equal(e.status_code, 400, `${name}: ${e.message}`);
        return true;
      });
    }
  });

  test('delete drops the model from the server and the store; the first model stays', async () => {
    await ollama.delete({ model: 'acme/stories:v1' });
    assert.ok(!(await ollama.list()).models.some((m) => m.name === 'acme/stories:v1'));
    assert.doesNotMatch(hearth(client, ['list']), /acme\/stories/);
    await assert.rejects(ollama.generate({ model: 'acme/stories:v1', prompt: 'x' }), (e) => e.status_code === 404);
    await assert.rejects(ollama.delete({ model: 'acme/stories:v1' }), (e) => e.status_code === 404);
    const first = (await ollama.list()).models[0].name;
    await assert.rejects(ollama.delete({ model: first }), (e) => e.status_code === 400);
    assert.ok(fs.existsSync(MODEL));
  });

  test('a key limited to some models may not pull or delete', async () => {
    const keys = path.join(root, 'keys');
    fs.writeFileSync(keys, 'full-key\nlimited-key models=acme/stories:v1\n');
    const s = await startServer(['--api-key-file', keys], { env: { HEARTH_HOME: client, HEARTH_MIRRORS: mirror } });
    try {
      const limited = new Ollama({ host: s.base, headers: { Authorization: 'Bearer limited-key' } });
      await assert.rejects(limited.pull({ model: 'acme/stories:v1', stream: false }), (e) => e.status_code === 403);
      await assert.rejects(limited.delete({ model: 'acme/stories:v1' }), (e) => e.status_code === 403);
      const full = new Ollama({ host: s.base, headers: { Authorization: 'Bearer full-key' } });
      assert.equal((await full.pull({ model: 'acme/stories:v1', stream: false })).status, 'success');
      const anonymous = await fetch(`${s.base}/api/pull`, { method: 'POST', body: '{"model":"acme/stories:v1"}' });
      assert.equal(anonymous.status, 401);
    } finally {
      assert.equal(await s.stop(), 0);
    }
  });
});

test('--no-pull refuses pull and delete', async () => {
  const s = await startServer(['--no-pull'], { env: { HEARTH_HOME: client, HEARTH_MIRRORS: mirror } });
  try {
    const o = new Ollama({ host: s.base });
    await assert.rejects(o.pull({ model: 'acme/stories:v1', stream: false }), (e) => e.status_code === 501);
    await assert.rejects(o.delete({ model: 'acme/stories:v1' }), (e) => e.status_code === 404);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('--models-from-store serves every stored model, each loaded on its first request', async () => {
  const home = path.join(root, 'store-only');
  hearth(home, ['import', MODEL, 'local/first:v1']);
  hearth(home, ['import', MODEL, 'local/second:v1']);
  const s = await startServer(['--models-from-store'], { env: { HEARTH_HOME: home }, model: null });
  try {
    const o = new Ollama({ host: s.base });
    const names = (await o.list()).models.map((m) => m.name).sort();
    assert.deepEqual(names, ['local/first:v1', 'local/second:v1']);
    assert.deepEqual((await o.ps()).models.map((m) => m.name), ['local/first:v1']);
    const r = await o.generate({ model: 'local/second:v1', prompt: 'Once upon a time', raw: true,
      options: { temperature: 0, num_predict: 64 } });
    assert.equal(r.response, REFERENCE_64);
    assert.deepEqual((await o.ps()).models.map((m) => m.name).sort(), ['local/first:v1', 'local/second:v1']);
    assert.match(s.log(), /local\/second:v1 .*imported locally/);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});
