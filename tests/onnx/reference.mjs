// hearth's ONNX executor against onnxruntime-node on the real models (tests/onnx/models.mjs):
//   node reference.mjs HEARTH_BIN WORK_DIR [--only SUBSTRING] [--ort-self-check]
// For each case it writes the fixed inputs as .npy under WORK_DIR/<case>/, runs onnxruntime
// (reference outputs in WORK_DIR/<case>/ort/), runs `hearth onnx run` on the same files
// (outputs in WORK_DIR/<case>/hearth/) and compares every output within the case's tolerance
// (|hearth - ort| <= atol + rtol * |ort|), printing the max abs and rel errors; a few cases
// run again on 1 and 3 threads (other splits of the same work). Then the Silero
// exports of the same weights run several frames, the state carried from frame to frame, and
// must agree with each other (and with onnxruntime) frame by frame.
// A model hearth cannot run is reported with hearth's error (which names the node).
// --ort-self-check compares onnxruntime with graph optimizations on and off instead (how
// the tolerances were set; see models.mjs).
// Without the npm packages (scripts/setup.sh installs them) the test is skipped (exit 77), or
// fails under CI=true.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cases, modelPath, TOL_VAD, VAD_GROUPS, VAD_MODELS, VAD_SEQUENCE_FRAMES, vadFeeds, vadFrame, vadNextState, vadZeroState } from './models.mjs';
import { readNpy, writeNpy } from './npy.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.join(here, 'node_modules');
const args = process.argv.slice(2);
const flag = (name) => { const i = args.indexOf(name); if (i < 0) return undefined; const v = args[i + 1]; args.splice(i, 2); return v; };
const only = flag('--only');
const selfCheck = args.includes('--ort-self-check');
const [bin, workDir] = args.filter((a) => !a.startsWith('--'));
if (!bin || !workDir) {
  console.error('usage: node reference.mjs HEARTH_BIN WORK_DIR [--only SUBSTRING] [--ort-self-check]');
  process.exit(2);
}

const allCases = cases().filter((c) => !only || c.id.includes(only));
const needed = [...new Set([...allCases.map((c) => c.file), ...VAD_MODELS.map((m) => m.file)])];
const missing = [];
if (!fs.existsSync(path.join(nodeModules, 'onnxruntime-node'))) missing.push('tests/onnx/node_modules/onnxruntime-node');
for (const f of needed) if (!fs.existsSync(modelPath(nodeModules, f))) missing.push(`tests/onnx/node_modules/${f}`);
if (!selfCheck && !fs.existsSync(bin)) missing.push(`hearth binary ${bin}`);
if (missing.length > 0) {
  const msg = `missing: ${missing.join(', ')} (run scripts/setup.sh)`;
  if (process.env.CI === 'true') {
    console.error(`FAIL: ${msg}`);
    process.exit(1);
  }
  console.log(`SKIP: ${msg}`);
  process.exit(77);
}
const ort = (await import('onnxruntime-node')).default;

const safe = (name) => name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_');
const toOrt = (t) => new ort.Tensor(t.dtype, t.data, t.shape);
const fromOrt = (t) => ({ dtype: t.type, shape: [...t.dims], data: t.data });

const sessions = new Map();
async function session(file, optimize = true) {
  const key = `${file}|${optimize}`;
  if (!sessions.has(key)) {
    sessions.set(key, await ort.InferenceSession.create(modelPath(nodeModules, file), {
      logSeverityLevel: 3,
      intraOpNumThreads: 1,
      graphOptimizationLevel: optimize ? 'all' : 'disabled',
    }));
  }
  return sessions.get(key);
}

// The feeds must be exactly the model's inputs, with its dtypes and static dims.
function checkFeeds(s, feeds) {
  const names = Object.keys(feeds).sort();
  const want = [...s.inputNames].sort();
  if (names.join() !== want.join()) return `harness feeds [${names}] but the model's inputs are [${want}]`;
  for (const meta of s.inputMetadata ?? []) {
    const t = feeds[meta.name];
    if (meta.type && meta.type !== t.dtype) return `input '${meta.name}' is ${meta.type}, the harness gives ${t.dtype}`;
    if (Array.isArray(meta.shape)) {
      const ok = meta.shape.length === t.shape.length && meta.shape.every((d, i) => typeof d !== 'number' || d === t.shape[i]);
      if (!ok) return `input '${meta.name}' has dims [${meta.shape}], the harness gives [${t.shape}]`;
    }
  }
  return null;
}

async function runOrt(file, feeds, optimize = true) {
  const s = await session(file, optimize);
  const bad = checkFeeds(s, feeds);
  if (bad) throw new Error(bad);
  const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrt(v)]));
  const out = await s.run(ortFeeds);
  return Object.fromEntries(s.outputNames.map((n) => [n, fromOrt(out[n])]));
}

// Runs hearth; returns {outputs: {name: tensor}} or {error}.
function runHearth(file, inputFiles, outDir, threads = 0) {
  fs.rmSync(outDir, { recursive: true, force: true });
  const argv = ['onnx', 'run', modelPath(nodeModules, file), '--output-dir', outDir, '--json'];
  if (threads) argv.push('--threads', String(threads));
  for (const [name, f] of Object.entries(inputFiles)) argv.push('--input', `${name}=${f}`);
  const r = spawnSync(bin, argv, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    // (the model path that starts hearth's message is dropped: the case names the model)
    const err = (r.stderr || '').trim().replace(`error: ${argv[2]}: `, '') || `exit ${r.status ?? r.signal}`;
    return { error: err.split('\n').slice(-3).join(' | ') };
  }
  let summary;
  try {
    summary = JSON.parse(r.stdout);
  } catch (e) {
    return { error: `hearth printed no JSON: ${e.message}` };
  }
  const outputs = {};
  for (const o of summary.outputs) outputs[o.name] = readNpy(o.file);
  return { outputs, ms: summary.run_ms };
}

function writeInputs(dir, feeds) {
  fs.mkdirSync(dir, { recursive: true });
  const files = {};
  for (const [name, t] of Object.entries(feeds)) {
    files[name] = path.join(dir, `${safe(name)}.npy`);
    writeNpy(files[name], t);
  }
  return files;
}

// Element-wise comparison: the max abs error, the max rel error over elements with
// |ref| >= 1e-3, the worst ratio |d| / (atol + rtol |ref|) (<= 1 passes), and where it is.
function compare(got, ref, tol) {
  if (!got) return { ok: false, why: 'not produced' };
  if (got.dtype !== ref.dtype) return { ok: false, why: `dtype ${got.dtype}, onnxruntime ${ref.dtype}` };
  if (got.shape.join() !== ref.shape.join()) return { ok: false, why: `shape [${got.shape}], onnxruntime [${ref.shape}]` };
  let maxAbs = 0, maxRel = 0, ratio = 0, worst = -1;
  for (let i = 0; i < ref.data.length; ++i) {
    const r = Number(ref.data[i]), g = Number(got.data[i]);
    const d = Math.abs(g - r);
    if (Number.isNaN(d) && !(Number.isNaN(r) && Number.isNaN(g))) {
      return { ok: false, why: `element ${i} is ${g}, onnxruntime ${r}`, maxAbs: NaN, maxRel: NaN, ratio: Infinity };
    }
    if (Number.isNaN(d)) continue;
    if (d > maxAbs) maxAbs = d;
    if (Math.abs(r) >= 1e-3) maxRel = Math.max(maxRel, d / Math.abs(r));
    const q = d / (tol.atol + tol.rtol * Math.abs(r));
    if (q > ratio) { ratio = q; worst = i; }
  }
  const ok = ratio <= 1;
  const at = worst >= 0 ? ` (worst at element ${worst}: ${Number(got.data[worst])} vs ${Number(ref.data[worst])})` : '';
  return { ok, maxAbs, maxRel, ratio, why: ok ? '' : `outside atol ${tol.atol} rtol ${tol.rtol}${at}` };
}

const short = (s) => (s.length <= 400 ? s : `${s.slice(0, 150)} ... ${s.slice(-230)}`);
const fmt = (x) => (x === undefined ? '-' : Number.isNaN(x) ? 'NaN' : x.toExponential(2));
const results = [];

async function runCase(c) {
  const dir = path.join(workDir, c.id);
  const inputFiles = writeInputs(path.join(dir, 'inputs'), c.feeds);
  let ref;
  try {
    ref = await runOrt(c.file, c.feeds);
  } catch (e) {
    results.push({ id: c.id, ok: false, where: `onnxruntime: ${e.message}` });
    return;
  }
  if (selfCheck) {
    const raw = await runOrt(c.file, c.feeds, false);
    for (const [name, t] of Object.entries(ref)) {
      const cmp = compare(raw[name], t, c.tol);
      console.log(`${c.id} ${name}: ort opt vs no-opt max abs ${fmt(cmp.maxAbs)} max rel ${fmt(cmp.maxRel)} ratio ${cmp.ratio?.toFixed(3)}`);
    }
    return;
  }
  fs.mkdirSync(path.join(dir, 'ort'), { recursive: true });
  for (const [name, t] of Object.entries(ref)) writeNpy(path.join(dir, 'ort', `${safe(name)}.npy`), t);
  // The default thread count, then any the case lists (other splits of the same work).
  for (const threads of [0, ...(c.threads ?? [])]) {
    const id = threads ? `${c.id} --threads ${threads}` : c.id;
    const h = runHearth(c.file, inputFiles, path.join(dir, threads ? `hearth-t${threads}` : 'hearth'), threads);
    if (h.error) {
      results.push({ id, ok: false, where: `hearth: ${h.error}` });
      console.log(`FAIL ${id}: hearth: ${short(h.error)}`);
      continue;
    }
    for (const [name, t] of Object.entries(ref)) {
      const cmp = compare(h.outputs[name], t, c.tol);
      console.log(`${cmp.ok ? 'ok  ' : 'FAIL'} ${id} ${name} [${t.shape}]: max abs ${fmt(cmp.maxAbs)} max rel ${fmt(cmp.maxRel)}` +
        ` (atol ${c.tol.atol} rtol ${c.tol.rtol}, worst ratio ${cmp.ratio?.toFixed(3)})${cmp.ok ? '' : ' ' + cmp.why}` +
        (h.ms !== undefined ? ` [hearth ${h.ms.toFixed(0)} ms]` : ''));
      results.push({ id: `${id} ${name}`, ok: cmp.ok, maxAbs: cmp.maxAbs, maxRel: cmp.maxRel, where: cmp.ok ? '' : cmp.why });
    }
  }
}

// Frames 0..n-1 of the synthetic signal through one export, the state carried, on
// onnxruntime and on hearth (hearth's own state outputs feed its next frame).
async function vadSequence(m) {
  const dir = path.join(workDir, 'sequence', m.id);
  const ortProbs = [], hearthProbs = [];
  let ortState = vadZeroState(m.kind), hState = vadZeroState(m.kind);
  let error;
  for (let k = 0; k < VAD_SEQUENCE_FRAMES; ++k) {
    const frame = vadFrame(k);
    const o = await runOrt(m.file, vadFeeds(m.kind, frame, ortState));
    ortProbs.push(Number(o.output.data[0]));
    ortState = vadNextState(m.kind, o);
    if (error) continue;
    const files = writeInputs(path.join(dir, `frame${k}`), vadFeeds(m.kind, frame, hState));
    const h = runHearth(m.file, files, path.join(dir, `frame${k}`, 'hearth'));
    if (h.error) { error = h.error; continue; }
    hearthProbs.push(Number(h.outputs.output.data[0]));
    hState = vadNextState(m.kind, h.outputs);
  }
  return { ortProbs, hearthProbs: error ? null : hearthProbs, error };
}

async function vadGroups() {
  const seq = {};
  for (const m of VAD_MODELS) if (VAD_GROUPS.some((g) => g.members.includes(m.id))) seq[m.id] = await vadSequence(m);
  for (const g of VAD_GROUPS) {
    const head = g.members[0];
    for (const id of g.members) {
      const s = seq[id];
      const atol = g.atol[id] ?? g.default_atol;
      const maxDiff = (a, b) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
      // The grouping itself: onnxruntime must see the same weights in every member.
      const ortDiff = maxDiff(s.ortProbs, seq[head].ortProbs);
      if (id !== head) console.log(`     sequence ${g.name}: onnxruntime ${id} vs ${head} max abs ${fmt(ortDiff)} (atol ${atol})`);
      if (ortDiff > atol) {
        results.push({ id: `sequence ${id}`, ok: false, where: `onnxruntime: ${id} differs from ${head} by ${fmt(ortDiff)}: not the same weights (models.mjs VAD_GROUPS is wrong)` });
        continue;
      }
      if (!s.hearthProbs) {
        results.push({ id: `sequence ${id}`, ok: false, where: `hearth: ${s.error}` });
        console.log(`FAIL sequence ${id}: hearth: ${short(s.error)}`);
        continue;
      }
      const selfDiff = maxDiff(s.hearthProbs, s.ortProbs);
      const selfOk = s.hearthProbs.every((p, i) => Math.abs(p - s.ortProbs[i]) <= TOL_VAD.atol + TOL_VAD.rtol * Math.abs(s.ortProbs[i]));
      let line = `${id}: ${VAD_SEQUENCE_FRAMES} frames, hearth vs onnxruntime max abs ${fmt(selfDiff)}`;
      let ok = selfOk;
      if (id !== head && seq[head].hearthProbs) {
        const groupDiff = maxDiff(s.hearthProbs, seq[head].hearthProbs);
        ok &&= groupDiff <= atol;
        line += `; vs ${head} on hearth ${fmt(groupDiff)} (atol ${atol}; onnxruntime ${fmt(ortDiff)})`;
      }
      console.log(`${ok ? 'ok  ' : 'FAIL'} sequence ${g.name} ${line}`);
      console.log(`       hearth ${s.hearthProbs.map((p) => p.toFixed(6)).join(' ')}`);
      console.log(`       ort    ${s.ortProbs.map((p) => p.toFixed(6)).join(' ')}`);
      results.push({ id: `sequence ${id}`, ok, maxAbs: selfDiff, where: ok ? '' : line });
    }
  }
}

// `hearth onnx info --json` lists the same inputs and outputs (names, dtypes, ranks) as
// onnxruntime's session metadata.
async function infoCheck(file) {
  const s = await session(file);
  const r = spawnSync(bin, ['onnx', 'info', '--json', modelPath(nodeModules, file)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const id = `info ${path.basename(file)}`;
  if (r.status !== 0) {
    results.push({ id, ok: false, where: `hearth: ${(r.stderr || '').trim().replace(`error: ${modelPath(nodeModules, file)}: `, '')}` });
    return;
  }
  const info = JSON.parse(r.stdout);
  const sig = (list) => list.map((v) => `${v.name}:${v.dtype ?? v.type}:${(v.dims ?? v.shape)?.length}`).join(' ');
  const mine = `${sig(info.inputs)} -> ${sig(info.outputs)}`;
  const theirs = `${sig(s.inputMetadata)} -> ${sig(s.outputMetadata)}`;
  const ok = mine === theirs;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${id}: opset ${info.opset}, ${info.nodes} nodes, ${mine}${ok ? '' : ` (onnxruntime: ${theirs})`}`);
  results.push({ id, ok, where: ok ? '' : `hearth ${mine}, onnxruntime ${theirs}` });
}

fs.mkdirSync(workDir, { recursive: true });
if (!selfCheck) for (const f of [...new Set(allCases.map((c) => c.file))]) await infoCheck(f);
for (const c of allCases) await runCase(c);
if (!selfCheck && !only) await vadGroups();
if (selfCheck) process.exit(0);

// The summary: one line per failing check, errors shortened (nested If errors are long: the
// start names the top node, the end the failing one).
const failed = results.filter((r) => !r.ok);
console.log(`\n${results.length - failed.length}/${results.length} checks match onnxruntime`);
const byWhere = new Map();
for (const r of failed) byWhere.set(r.where, [...(byWhere.get(r.where) ?? []), r.id]);
for (const [where, ids] of byWhere) console.log(`  FAIL ${ids.join(', ')}:\n       ${short(where)}`);
process.exit(failed.length === 0 ? 0 : 1);
