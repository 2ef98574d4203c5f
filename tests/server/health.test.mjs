// GET /health is 503 (with Retry-After and an OpenAI-shaped error) while the model loads. The
// load is held open by serving a named pipe: opening it blocks until the test opens the other
// end, so the server listens but cannot finish loading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HEARTH } from './harness.mjs';

test('/health is 503 while the model loads', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-health-'));
  const fifo = path.join(dir, 'slow.gguf');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  const child = spawn(HEARTH, ['serve', fifo, '--host', '127.0.0.1', '--port', '0', '-c', '512'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEARTH_LOG: 'info' } });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening on" line:\n${log}`)), 30000);
      child.stderr.on('data', (d) => {
        log += d.toString();
        const m = log.match(/listening on http:\/\/[^\s]+:(\d+)/);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
    });
    const base = `http://127.0.0.1:${port}`;
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 503);
    assert.equal(health.headers.get('retry-after'), '1');
    const body = await health.json();
    assert.equal(body.error.code, 'model_loading');
    assert.equal(body.error.message, 'the model is loading');
    // Model routes say the same; /metrics answers, with the model not loaded.
    const chat = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }] }),
    });
    assert.equal(chat.status, 503);
    assert.equal((await chat.json()).error.code, 'model_loading');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^hearth_model_loaded 0$/m);
    // Still loading a second later.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await fetch(`${base}/health`)).status, 503);
    // Let the load go on: the pipe holds no model (the writer closes at once), so the server
    // stops with one error line.
    fs.closeSync(fs.openSync(fifo, 'w'));
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 20000))]);
    assert.notEqual(code, 'timeout', log);
    assert.notEqual(code, 0, log);
    assert.equal(log.split('\n').filter((l) => l.startsWith('error: ')).length, 1, log);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
