// hearth anomaly: train an autoencoder on a synthetic multichannel signal (four correlated
// channels with noise), then score a second stretch with injected faults — spikes, a drift on
// one channel, a stuck sensor — and report precision and recall over the windows (a window is
// faulty when it overlaps a fault). The exported ONNX file must also run in onnxruntime-node
// and give the scores hearth gives.
// Usage: node anomaly.test.mjs HEARTH_BIN ARTIFACT_DIR.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [hearthArg, artifacts] = process.argv.slice(2);
const hearth = path.resolve(hearthArg);
fs.mkdirSync(artifacts, { recursive: true });
let failures = 0;
const check = (cond, what) => { console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`); if (!cond) failures++; };

function rng(seed) {
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
function gauss(r) { return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()); }
// Four channels: two oscillations, their mix, and a slow one; sensor noise on each.
function signal(rows, t0, seed) {
  const r = rng(seed);
  const out = [];
  for (let i = 0; i < rows; ++i) {
    const t = t0 + i;
    const a = Math.sin((2 * Math.PI * t) / 50);
    const b = 0.5 * Math.cos((2 * Math.PI * t) / 50) + 0.2 * Math.sin((2 * Math.PI * t) / 13);
    out.push([a, b, 0.5 * a + 0.5 * b, 0.8 * Math.sin((2 * Math.PI * t) / 200)].map((v) => v + 0.03 * gauss(r)));
  }
  return out;
}
const toCsv = (rows) => 'pressure,flow,mix,temp\n' + rows.map((r) => r.map((v) => v.toFixed(5)).join(',')).join('\n') + '\n';

const trainCsv = path.join(artifacts, 'sensors_normal.csv');
fs.writeFileSync(trainCsv, toCsv(signal(6000, 0, 1)));
const test = signal(3000, 6000, 2);
const faults = [];
// Spikes: single-sample jumps on one channel.
for (const [row, ch] of [[300, 0], [700, 2], [1100, 1], [2600, 3]]) { test[row][ch] += 3.0; faults.push([row, row]); }
// Drift: a ramp on the mix channel, breaking its relation to the other two.
for (let i = 1400; i < 1700; ++i) test[i][2] += ((i - 1400) / 300) * 1.5;
faults.push([1400, 1699]);
// A stuck sensor: flow frozen at its value for 200 rows.
for (let i = 2000; i < 2200; ++i) test[i][1] = test[1999][1];
faults.push([2000, 2199]);
const testCsv = path.join(artifacts, 'sensors_faulty.csv');
fs.writeFileSync(testCsv, toCsv(test));

const model = path.join(artifacts, 'sensors.onnx');
const tr = spawnSync(hearth, ['anomaly', 'train', '--csv', trainCsv, '--window', '32', '--stride', '2', '--out', model], { encoding: 'utf8' });
console.log(tr.stdout.trim());
check(tr.status === 0 && fs.existsSync(model), `anomaly train (${tr.stderr.trim()})`);
const sc = spawnSync(hearth, ['anomaly', 'score', '--model', model, '--csv', testCsv, '--stride', '16', '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
check(sc.status === 0, `anomaly score (${sc.stderr.trim()})`);
const res = JSON.parse(sc.stdout);
let tp = 0, fp = 0, fn = 0;
for (const w of res.windows) {
  const faulty = faults.some(([a, b]) => w.start_row <= b && a < w.end_row);
  if (w.anomaly && faulty) tp++; else if (w.anomaly) fp++; else if (faulty) fn++;
}
const precision = tp / Math.max(1, tp + fp), recall = tp / Math.max(1, tp + fn);
console.log(`windows ${res.windows.length}, faulty ${tp + fn}, flagged ${tp + fp}: precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)}`);
check(precision >= 0.9, `precision ${precision.toFixed(3)} >= 0.9`);
check(recall >= 0.8, `recall ${recall.toFixed(3)} >= 0.8`);
// Each kind of fault is caught somewhere.
for (const [a, b] of faults) {
  check(res.windows.some((w) => w.anomaly && w.start_row <= b && a < w.end_row), `fault at rows ${a}-${b} flagged`);
}
// Normal data scores below the threshold almost everywhere.
const normal = spawnSync(hearth, ['anomaly', 'score', '--model', model, '--csv', trainCsv, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
const nres = JSON.parse(normal.stdout);
check(nres.anomalies / nres.windows.length < 0.01, `normal data: ${nres.anomalies} of ${nres.windows.length} windows flagged`);

// The exported file in another runtime: onnxruntime-node gives hearth's scores.
const ortEntry = path.join(here, '..', 'onnx', 'node_modules', 'onnxruntime-node', 'dist', 'index.js');
if (fs.existsSync(ortEntry)) {
  const ort = await import(ortEntry);
  const s = await ort.InferenceSession.create(model, { logSeverityLevel: 3 });
  const win = 32, stride = 16, rows = test.length;
  const n = Math.floor((rows - win) / stride) + 1;
  const x = new Float32Array(n * win * 4);
  for (let w = 0; w < n; ++w) for (let t = 0; t < win; ++t) for (let c = 0; c < 4; ++c) x[(w * win + t) * 4 + c] = Number(test[w * stride + t][c].toFixed(5));
  const out = await s.run({ window: new ort.Tensor('float32', x, [n, win * 4]) });
  let worst = 0;
  for (let w = 0; w < n; ++w) worst = Math.max(worst, Math.abs(out.score.data[w] - res.windows[w].score) / (1e-6 + Math.abs(out.score.data[w])));
  check(n === res.windows.length && worst < 1e-3, `onnxruntime runs the exported model: scores agree (worst relative ${worst.toExponential(2)})`);
} else if (process.env.CI === 'true') {
  check(false, 'onnxruntime-node missing (run scripts/setup.sh)');
}
// Bad input: a ragged CSV is refused naming the line.
const ragged = path.join(artifacts, 'ragged.csv');
fs.writeFileSync(ragged, 'a,b\n1,2\n3\n');
const bad = spawnSync(hearth, ['anomaly', 'train', '--csv', ragged, '--out', path.join(artifacts, 'x.onnx')], { encoding: 'utf8' });
check(bad.status !== 0 && /ragged.csv:3: 1 fields, the first row has 2/.test(bad.stderr), `ragged CSV refused (${bad.stderr.trim()})`);

if (failures) { console.error(`${failures} check(s) failed`); process.exit(1); }
console.log('all anomaly checks passed');
