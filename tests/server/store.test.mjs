// `hearth serve STORE_REF`: an unsigned store model is refused with one clear error line (and
// the server never listens); with --allow-unsigned it is served, under its reference as model id.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, HEARTH, MODEL } from './harness.mjs';

let home;
let env;
before(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-serve-store-'));
  env = { ...process.env, HEARTH_HOME: home };
  const r = spawnSync(HEARTH, ['import', MODEL, 'demo/stories:v1'], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('a model this host imported serves unsigned, as a local import', async () => {
  const server = await startServer([], { env: { HEARTH_HOME: home }, model: 'demo/stories:v1' });
  try {
    assert.match(server.log(), /imported locally from .* by this host/);
    assert.equal((await fetch(`${server.base}/health`)).status, 200);
  } finally {
    assert.equal(await server.stop(), 0);
  }
  // Without the local-import record it stands for an unsigned model from elsewhere (below).
  fs.rmSync(path.join(home, 'store', 'local-imports'), { recursive: true, force: true });
});
after(() => { fs.rmSync(home, { recursive: true, force: true }); });

test('an unsigned store model is refused by serve', () => {
  const r = spawnSync(HEARTH, ['serve', 'demo/stories:v1', '--port', '0', '-c', '512'],
    { env: { ...env, HEARTH_LOG: 'info' }, encoding: 'utf8', timeout: 30000 });
  assert.notEqual(r.status, 0, `serve should refuse:\n${r.stderr}`);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], /'demo\/stories:v1' refused: the model is not signed/);
  assert.match(errors[0], /--allow-unsigned/);
  assert.doesNotMatch(r.stderr, /listening on/);
});

test('--allow-unsigned serves it', async () => {
  const server = await startServer(['--allow-unsigned'], { env: { HEARTH_HOME: home }, model: 'demo/stories:v1' });
  try {
    const health = await fetch(`${server.base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const models = await (await fetch(`${server.base}/v1/models`)).json();
    assert.equal(models.data[0].id, 'demo/stories:v1');
    const r = await fetch(`${server.base}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 4, temperature: 0 }),
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).usage.completion_tokens, 4);
    assert.match(server.log(), /UNSIGNED, allowed by operator/);
  } finally {
    await server.stop();
  }
});
