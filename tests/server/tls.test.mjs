// HTTPS with --tls-cert/--tls-key: a self-signed certificate made with the openssl CLI, trusted
// by the client as its CA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { HEARTH, MODEL } from './harness.mjs';

// setup.sh installs openssl; only outside CI may a machine without it skip this test.
const haveOpenssl = spawnSync('openssl', ['version']).status === 0 || process.env.CI === 'true';
let dir;
let child;
let port;
let ca;

function get(p, body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, method: body ? 'POST' : 'GET', ca, servername: 'localhost' },
      (res) => {
        let data = '';
        res.on('data', (d) => { data += d; });
        res.on('end', () => resolve({ status: res.statusCode, body: data }));
      });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

before(async () => {
  if (!haveOpenssl) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-tls-'));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  assert.equal(r.status, 0, r.stderr?.toString());
  ca = fs.readFileSync(cert);
  child = spawn(HEARTH, ['serve', MODEL, '--port', '0', '-c', '512', '--tls-cert', cert, '--tls-key', key],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEARTH_LOG: 'info' } });
  let log = '';
  port = await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on https:\/\/[^\s]+:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (c) => reject(new Error(`exited ${c}: ${log}`)));
  });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await get('/health')).status === 200) return;
    } catch { /* loading */ }
    await new Promise((r) => setTimeout(r, 100));
  }
});
after(() => {
  child?.kill('SIGTERM');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('serves HTTPS with the given certificate', { skip: !haveOpenssl && 'openssl not installed' }, async () => {
  const r = await get('/v1/completions', JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }));
  assert.equal(r.status, 200);
  const text = JSON.parse(r.body).choices[0].text;
  // A prefix of the reference greedy continuation (shared/README.md).
  assert.ok(text.length > 0 && ', there was a little girl named Lily.'.startsWith(text), text);
});
