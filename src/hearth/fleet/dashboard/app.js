// The fleet dashboard: plain JS, no library, nothing fetched but this controller. Data comes from
// the admin API with the token in an Authorization header (kept in sessionStorage); live changes
// come from GET /v1/dashboard/events, read with fetch() as server-sent events (EventSource cannot
// send the header). Every text from the fleet is put in the page as text, never as HTML.
'use strict';

const TOKEN_KEY = 'hearth-fleet-admin-token';
const MODEL_ACTIONS = /^(desired_published|node_rolled_back|node_failed|node_event:)/;

const S = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  nodes: new Map(),      // id -> node (as /v1/nodes shows it)
  nodeKeys: new Map(),   // id -> JSON text, to update only rows that changed
  rollouts: new Map(),   // id -> summary
  audit: [],             // oldest first, at most AUDIT_KEEP
  rolloutDetail: null,   // the rollout shown (GET /v1/rollouts/<id>)
  view: '', param: '',
  range: 3600,
  stream: null,
  loaded: false,
};
const AUDIT_KEEP = 2000;

// ------------------------------------------------------------------ helpers

const $ = (id) => document.getElementById(id);

// h('td', {class: 'x', title: 't'}, 'text', child, ...): an element with text children only.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function fmtTime(t) {
  if (!t) return '—';
  const d = new Date(t * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
function fmtAge(t) {
  if (!t) return 'never';
  const s0 = Math.max(0, Math.round(Date.now() / 1000 - t));
  if (s0 < 90) return `${s0} s ago`;
  if (s0 < 5400) return `${Math.round(s0 / 60)} min ago`;
  if (s0 < 172800) return `${Math.round(s0 / 3600)} h ago`;
  return `${Math.round(s0 / 86400)} d ago`;
}
function fmtNum(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}
function shortRef(serving) {
  if (!serving || !serving.reference) return '—';
  const ref = serving.reference;
  const slash = ref.indexOf('/');
  return slash > 0 && /[.:]/.test(ref.slice(0, slash)) ? ref.slice(slash + 1) : ref;
}
function labelsText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
}
function badge(state, text) {
  return h('span', { class: `badge ${state || 'none'}` }, text || state || '—');
}
// "site=north,gpu=none" -> {site: 'north', gpu: 'none'}; null if malformed.
function parseSelector(text) {
  const out = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}
function matches(labels, selector) {
  for (const [k, v] of Object.entries(selector)) if ((labels || {})[k] !== v) return false;
  return true;
}
// "decode_tok_s > 5" -> {metric, op, value}
function parseGate(g) {
  const m = /^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$/.exec(g);
  return m ? { metric: m[1], op: m[2], value: Number(m[3]), text: g } : null;
}
function gatePasses(gate, v) {
  switch (gate.op) {
    case '<': return v < gate.value;
    case '<=': return v <= gate.value;
    case '>': return v > gate.value;
    case '>=': return v >= gate.value;
    default: return false;
  }
}

// ------------------------------------------------------------------ API

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const r = await fetch(path, {
    ...options,
    cache: 'no-store',
    headers: { ...(options.headers || {}), Authorization: `Bearer ${S.token}` },
  });
  if (r.status === 401) throw new Unauthorized('the admin token was refused');
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body?.error?.message || `${r.status} ${r.statusText}`);
  return body;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  S.token = '';
  S.stream?.abort();
  S.stream = null;
  S.loaded = false;
  location.hash = '#/login';
  if (message) {
    $('login-error').textContent = message;
    $('login-error').hidden = false;
  }
  route();
}

function failed(e) {
  if (e instanceof Unauthorized) signOut('The controller refused this token.');
  else console.warn(e);
}

async function loadAll() {
  const [nodes, rollouts, audit] = await Promise.all([
    api('/v1/nodes'), api('/v1/dashboard/rollouts'), api('/v1/dashboard/audit'),
  ]);
  S.nodes.clear();
  for (const n of nodes.nodes) S.nodes.set(n.id, n);
  S.rollouts.clear();
  for (const r of rollouts.rollouts) S.rollouts.set(r.id, r);
  S.audit = audit.audit;
  S.loaded = true;
  renderAll();
}

// ------------------------------------------------------------------ live stream

function setLive(on) {
  const el = $('live');
  el.className = `live ${on ? 'on' : 'off'}`;
  el.textContent = on ? 'live' : 'reconnecting';
  document.body.dataset.live = on ? 'on' : 'off';
}

async function runStream() {
  if (S.stream) return;
  const ctl = new AbortController();
  S.stream = ctl;
  try {
    const r = await fetch('/v1/dashboard/events', {
      headers: { Authorization: `Bearer ${S.token}`, Accept: 'text/event-stream' },
      cache: 'no-store',
      signal: ctl.signal,
    });
    if (r.status === 401) throw new Unauthorized('refused');
    if (!r.ok || !r.body) throw new Error(`live stream: ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length) await onEvent(event, data.join('\n'));
      }
    }
  } catch (e) {
    if (e instanceof Unauthorized) return failed(e);
    if (ctl.signal.aborted) return;
  } finally {
    if (S.stream === ctl) S.stream = null;
  }
  if (ctl.signal.aborted || !S.token) return;
  setLive(false);
  setTimeout(() => { if (S.token && !S.stream) runStream(); }, 2000);
}

async function onEvent(event, text) {
  const msg = JSON.parse(text);
  if (event === 'hello' || event === 'resync') {
    setLive(true);
    await loadAll().catch(failed);  // a fresh look; updates from here on come on the stream
    return;
  }
  if (event !== 'update') return;
  for (const n of msg.nodes || []) S.nodes.set(n.id, n);
  for (const id of msg.removed || []) S.nodes.delete(id);
  const changedRollouts = new Set();
  for (const r of msg.rollouts || []) {
    S.rollouts.set(r.id, r);
    changedRollouts.add(r.id);
  }
  if (msg.audit?.length) {
    S.audit.push(...msg.audit);
    if (S.audit.length > AUDIT_KEEP) S.audit.splice(0, S.audit.length - AUDIT_KEEP);
  }
  scheduleRender();
  if (S.view === 'rollouts' && S.param && changedRollouts.has(S.param)) loadRolloutDetail(S.param);
  if (S.view === 'node' && (msg.nodes || []).some((n) => n.id === S.param)) {
    renderNodeHead();
    if (msg.audit?.some((a) => a.subject === S.param)) renderHistory();
  }
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderAll();
  });
}

function renderAll() {
  if (!S.loaded) return;
  if (S.view === 'fleet') renderFleet();
  else if (S.view === 'rollouts') renderRollouts();
  else if (S.view === 'audit') renderAudit();
  else if (S.view === 'node') renderNodeHead();
}

// ------------------------------------------------------------------ fleet

const rowCache = new Map();  // id -> {tr, key, age}
let groupKeys = [];

function fleetRow(n) {
  const key = JSON.stringify(n);
  const cached = rowCache.get(n.id);
  if (cached && cached.key === key) return cached;
  const t = n.telemetry || {};
  const age = h('td', { class: 'age' }, fmtAge(n.last_seen));
  const tr = h('tr', { dataset: { node: n.id, state: n.state || '', presence: n.presence } },
    h('td', null, h('a', { href: `#/node/${encodeURIComponent(n.id)}`, class: 'mono' }, n.id)),
    h('td', null, h('span', { class: `dot ${n.presence}` }), n.presence),
    h('td', { title: n.reason || '' }, badge(n.state, n.state || 'no report'), n.reason ? ` ${n.reason.slice(0, 60)}` : ''),
    h('td', { class: 'mono', title: n.serving ? `${n.serving.reference} ${n.serving.digest}` : '' }, shortRef(n.serving)),
    h('td', { class: 'num' }, fmtNum(t.decode_tok_s)),
    h('td', { class: 'num' }, t.ttft_p50_ms === undefined ? '—' : `${fmtNum(t.ttft_p50_ms)} ms`),
    age,
    h('td', { class: 'labels' }, labelsText(n.labels)));
  const entry = { tr, key, age, lastSeen: n.last_seen };
  if (cached) cached.tr.replaceWith(tr);
  rowCache.set(n.id, entry);
  return entry;
}

function renderFleet() {
  const selText = $('selector').value.trim();
  const selector = parseSelector(selText);
  $('selector').classList.toggle('error', selector === null);
  const search = $('search').value.trim().toLowerCase();
  const all = [...S.nodes.values()];

  // Group-by choices: every label key seen.
  const keys = [...new Set(all.flatMap((n) => Object.keys(n.labels || {})))].sort();
  const gb = $('group-by');
  if (keys.join('\n') !== groupKeys.join('\n')) {
    const current = gb.value;
    gb.replaceChildren(h('option', { value: '' }, '(none)'), ...keys.map((k) => h('option', { value: k }, k)));
    gb.value = keys.includes(current) ? current : (keys.includes('site') ? 'site' : (keys[0] || ''));
    groupKeys = keys;
  }
  const by = gb.value;

  const shown = all.filter((n) => (selector === null || matches(n.labels, selector)) &&
    (!search || n.id.toLowerCase().includes(search)));
  shown.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // Summary over the shown nodes.
  const count = (f) => {
    const m = new Map();
    for (const n of shown) { const k = f(n); m.set(k, (m.get(k) || 0) + 1); }
    return [...m.entries()].sort((a, b) => b[1] - a[1]);
  };
  const chips = [];
  for (const [k, c] of count((n) => n.presence)) chips.push(h('span', { class: 'chip' }, h('span', { class: `dot ${k}` }), `${c} ${k}`));
  for (const [k, c] of count((n) => n.state || 'no report')) chips.push(h('span', { class: 'chip' }, badge(k), ` ${c}`));
  for (const [k, c] of count((n) => shortRef(n.serving))) chips.push(h('span', { class: 'chip mono' }, `${k}: ${c}`));
  $('fleet-summary').replaceChildren(...chips);
  $('fleet-count').textContent = `${shown.length} of ${all.length} nodes`;

  // Groups, each a tbody: a header row and its nodes' rows (cached, rebuilt only when changed).
  const groups = new Map();
  for (const n of shown) {
    const g = by ? ((n.labels || {})[by] ?? '(unset)') : 'all nodes';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(n);
  }
  const table = $('fleet-table');
  const frag = document.createDocumentFragment();
  for (const g of [...groups.keys()].sort()) {
    const members = groups.get(g);
    const online = members.filter((n) => n.presence === 'online').length;
    const serving = members.filter((n) => n.state === 'serving').length;
    const bad = members.filter((n) => n.state === 'failed' || n.state === 'rolled_back').length;
    const tbody = h('tbody', { dataset: { group: g } },
      h('tr', { class: 'group' }, h('td', { colspan: 8 }, by ? `${by}=${g}` : g,
        h('span', { class: 'chip' }, `${members.length} nodes`),
        h('span', { class: 'chip' }, `${online} online`),
        h('span', { class: 'chip' }, `${serving} serving`),
        bad ? h('span', { class: 'chip' }, badge('failed', `${bad} failed`)) : null)));
    for (const n of members) tbody.append(fleetRow(n).tr);
    frag.append(tbody);
  }
  for (const old of [...table.tBodies]) old.remove();
  table.append(frag);
  $('fleet-empty').hidden = shown.length > 0;
  for (const id of [...rowCache.keys()]) if (!S.nodes.has(id)) rowCache.delete(id);
}

function tickAges() {
  if (S.view !== 'fleet') return;
  for (const e of rowCache.values()) {
    const text = fmtAge(e.lastSeen);
    if (e.age.textContent !== text) e.age.textContent = text;
  }
}

// ------------------------------------------------------------------ rollouts

function progress(r) {
  const st = r.states || {};
  const total = r.nodes || 0;
  const bar = h('span', { class: 'progress', title: Object.entries(st).map(([k, v]) => `${k}: ${v}`).join(', ') });
  const part = (cls, n) => {
    if (!n || !total) return;
    const seg = h('span', { class: cls });
    seg.style.width = `${(100 * n) / total}%`;
    bar.append(seg);
  };
  part('p-serving', st.serving);
  part('p-active', (st.pulling || 0) + (st.verifying || 0) + (st.gating || 0));
  part('p-failed', (st.failed || 0) + (st.rolled_back || 0) + (st.offline || 0));
  return h('span', null, bar, ` ${st.serving || 0}/${total}`);
}

function renderRollouts() {
  const list = [...S.rollouts.values()].sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1));
  const tbody = $('rollouts-table').tBodies[0];
  tbody.replaceChildren(...list.map((r) => h('tr', { dataset: { rollout: r.id, state: r.state } },
    h('td', null, h('a', { href: `#/rollouts/${r.id}`, class: 'mono' }, r.id)),
    h('td', { class: 'mono', title: r.model?.digest || '' }, r.model?.reference || '—'),
    h('td', { title: r.reason || '' }, badge(r.state)),
    h('td', null, progress(r)),
    h('td', { class: 'num' }, `${Math.min(r.current_batch + 1, r.batches)}/${r.batches}`),
    h('td', null, fmtTime(r.created)))));
  $('rollouts-empty').hidden = list.length > 0;
  renderRolloutDetail();
}

let detailLoading = null;
async function loadRolloutDetail(id) {
  if (detailLoading) { detailLoading.again = true; return; }
  detailLoading = { again: false };
  try {
    S.rolloutDetail = await api(`/v1/rollouts/${encodeURIComponent(id)}`);
    renderRolloutDetail();
  } catch (e) {
    failed(e);
  } finally {
    const again = detailLoading.again;
    detailLoading = null;
    if (again && S.view === 'rollouts' && S.param === id) loadRolloutDetail(id);
  }
}

async function controlRollout(id, action) {
  if (action === 'abort' && !confirm(`Abort rollout ${id}? Nodes that switched go back to their previous model.`)) return;
  try {
    S.rolloutDetail = await api(`/v1/rollouts/${id}/${action}`, { method: 'POST' });
    renderRolloutDetail();
  } catch (e) {
    if (e instanceof Unauthorized) return failed(e);
    alert(`${action}: ${e.message}`);
  }
}

function renderRolloutDetail() {
  const box = $('rollout-detail');
  const d = S.rolloutDetail;
  if (S.view !== 'rollouts' || !S.param || !d || d.id !== S.param) {
    box.hidden = !S.param;
    if (S.param && !d) box.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    return;
  }
  const gates = (d.gates || []).map(parseGate).filter(Boolean);
  const active = d.state === 'running' || d.state === 'paused';
  const btn = (action, label, enabled, cls) => {
    const b = h('button', { type: 'button', id: `rollout-${action}`, class: cls || '', disabled: !enabled }, label);
    b.addEventListener('click', () => controlRollout(d.id, action));
    return b;
  };
  const head = h('div', { class: 'rollout-head' },
    h('h1', { class: 'mono' }, d.id), badge(d.state),
    h('span', { class: 'mono' }, d.model?.reference || ''),
    h('span', { class: 'actions' },
      btn('pause', 'Pause', d.state === 'running'),
      btn('resume', 'Resume', d.state === 'paused'),
      btn('abort', 'Abort', active, 'danger')));
  const batches = (d.batches || []).map((b) => {
    const when = b.index < d.current_batch ? 'done' : b.index === d.current_batch ? (active ? 'current' : '') : 'not started';
    const rows = b.nodes.map((n) => h('tr', { dataset: { node: n.node, state: n.state } },
      h('td', null, h('a', { href: `#/node/${encodeURIComponent(n.node)}`, class: 'mono' }, n.node)),
      h('td', null, badge(n.state)),
      ...gates.map((g) => {
        const v = n.gate_values ? n.gate_values[g.metric] : undefined;
        if (v === undefined) return h('td', { class: 'num muted' }, '—');
        const pass = gatePasses(g, v);
        return h('td', { class: `num gate-val ${pass ? 'pass' : 'fail'}`, title: `${g.text}: ${pass ? 'passes' : 'fails'}` },
          fmtNum(v), pass ? ' ✓' : ' ✗');
      }),
      h('td', { class: 'detail' }, n.reason || ''),
      h('td', { class: 'mono muted' }, n.previous || '')));
    return h('div', { class: 'batch' },
      h('h3', null, `Batch ${b.index + 1} `, h('span', { class: 'muted' }, `${b.nodes.length} nodes${when ? ', ' + when : ''}`)),
      h('table', { class: 'grid', dataset: { batch: b.index } },
        h('thead', null, h('tr', null, h('th', null, 'Node'), h('th', null, 'State'),
          ...gates.map((g) => h('th', { class: 'num' }, g.text)), h('th', null, 'Reason'), h('th', null, 'Previous model'))),
        h('tbody', null, ...rows)));
  });
  box.replaceChildren(h('div', { class: 'card' }, head,
    h('dl', { class: 'kv' },
      h('dt', null, 'Model'), h('dd', { class: 'mono' }, `${d.model?.reference || ''} ${d.model?.digest || ''}`),
      h('dt', null, 'Reason'), h('dd', null, d.reason || '—'),
      h('dt', null, 'Current batch'), h('dd', null, `${d.current_batch + 1} of ${(d.batches || []).length}`)),
    h('div', { class: 'gates' }, h('span', { class: 'muted' }, 'Gates:'),
      ...(gates.length ? gates.map((g) => h('span', { class: 'chip mono' }, g.text)) : [h('span', { class: 'muted' }, 'none')])),
    ...batches));
  box.hidden = false;
}

async function submitRollout(ev) {
  ev.preventDefault();
  const f = ev.target;
  const msg = $('rollout-form-msg');
  msg.hidden = true;
  const lines = (t) => t.split('\n').map((x) => x.trim()).filter(Boolean);
  const spec = {
    model: { reference: f.reference.value.trim(), digest: f.digest.value.trim() },
    selector: f.selector.value.trim(),
    batches: f.batches.value.split(',').map((x) => x.trim()).filter(Boolean),
    gates: lines(f.gates.value),
    bake_seconds: Number(f.bake.value || 0),
    max_failures: f.max_failures.value.trim() || '0',
    sources: f.sources.value.split(/[\s,]+/).filter(Boolean),
    eval_text: f.eval_text.value,
  };
  const button = $('rollout-submit');
  button.disabled = true;
  try {
    const r = await api('/v1/rollouts', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(spec) });
    $('new-rollout').open = false;
    location.hash = `#/rollouts/${r.id}`;
  } catch (e) {
    if (e instanceof Unauthorized) return failed(e);
    msg.textContent = e.message;
    msg.hidden = false;
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ node

function renderNodeHead() {
  const n = S.nodes.get(S.param);
  const box = $('node-head');
  if (!n) {
    box.replaceChildren(h('h1', { class: 'mono' }, S.param), h('p', { class: 'muted' }, S.loaded ? 'No such node.' : 'Loading…'));
    return;
  }
  const t = n.telemetry || {};
  const mb = (b) => (b ? `${(b / 1048576).toFixed(0)} MiB` : '—');
  box.replaceChildren(
    h('div', { class: 'rollout-head' }, h('h1', { class: 'mono' }, n.id), h('span', null, h('span', { class: `dot ${n.presence}` }), n.presence), badge(n.state, n.state || 'no report')),
    h('dl', { class: 'kv' },
      h('dt', null, 'Serving'), h('dd', { class: 'mono' }, n.serving ? `${n.serving.reference} ${n.serving.digest}` : '—'),
      h('dt', null, 'Reason'), h('dd', null, n.reason || '—'),
      h('dt', null, 'Labels'), h('dd', null, labelsText(n.labels) || '—'),
      h('dt', null, 'Last report'), h('dd', null, `${fmtTime(n.last_seen)} (${fmtAge(n.last_seen)})`),
      h('dt', null, 'Enrolled'), h('dd', null, fmtTime(n.enrolled_at)),
      h('dt', null, 'Last telemetry'), h('dd', null, n.telemetry
        ? `decode ${fmtNum(t.decode_tok_s)} tok/s, prefill ${fmtNum(t.prefill_tok_s)} tok/s, TTFT p50 ${fmtNum(t.ttft_p50_ms)} ms / p95 ${fmtNum(t.ttft_p95_ms)} ms, ${t.requests} requests, ${t.errors} errors, memory ${mb(t.memory_bytes)}, disk free ${mb(t.disk_free_bytes)}`
        : '—')));
}

// A line chart in SVG: series [{name, points: [[t, v], ...]}] over [from, to]; a gap where
// points are more than 1.5 steps apart.
function lineChart(el, series, { from, to, step, format = fmtNum, yMax }) {
  const W = 640, H = 200, L = 52, R = 12, T = 22, B = 24;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
  const values = series.flatMap((x) => x.points.map((p) => p[1])).filter((v) => Number.isFinite(v));
  let top = yMax ?? Math.max(0, ...values);
  if (!(top > 0)) top = 1;
  top = niceCeil(top);
  const x = (t) => L + ((t - from) / Math.max(1, to - from)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    svg.append(s('line', { class: i ? 'grid-line' : 'axis', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(s('text', { x: L - 6, y: y(v) + 3, 'text-anchor': 'end' }, format(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = from + ((to - from) * i) / 4;
    const d = new Date(t * 1000);
    const label = to - from > 172800 ? `${d.getMonth() + 1}/${d.getDate()}` :
      `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    svg.append(s('text', { x: x(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, label));
  }
  svg.append(s('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  series.forEach((ser, i) => {
    let d = '';
    let prev = null;
    for (const [t, v] of ser.points) {
      if (!Number.isFinite(v)) { prev = null; continue; }
      d += `${prev === null || t - prev > step * 1.5 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      prev = t;
    }
    if (d) svg.append(s('path', { class: `line s${i}`, d }));
    if (ser.points.length <= 40) {
      for (const [t, v] of ser.points) if (Number.isFinite(v)) svg.append(s('circle', { class: `s${i}`, cx: x(t), cy: y(v), r: 2.2 }));
    }
    const lx = L + 8 + i * 150;
    svg.append(s('rect', { class: `s${i}`, x: lx, y: 6, width: 12, height: 3 }));
    svg.append(s('text', { x: lx + 16, y: 11, class: 'legend-text' }, ser.name));
  });
  if (!values.length) svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' }, 'no telemetry in this range'));
  el.replaceChildren(svg);
}
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

let chartTimer = null;
async function loadCharts() {
  const id = S.param;
  try {
    const d = await api(`/v1/nodes/${encodeURIComponent(id)}/telemetry?range=${S.range}`);
    if (S.view !== 'node' || S.param !== id) return;
    const pts = d.points;
    const series = (name, key) => ({ name, points: pts.map((p) => [p.t, p[key]]) });
    const opts = { from: d.from, to: d.to, step: d.step };
    lineChart($('chart-toks'), [series('decode', 'decode_tok_s'), series('prefill', 'prefill_tok_s')], opts);
    lineChart($('chart-ttft'), [series('p50', 'ttft_p50_ms'), series('p95', 'ttft_p95_ms')], opts);
    lineChart($('chart-errors'), [{ name: 'errors / requests', points: pts.map((p) => [p.t, p.error_rate === null ? NaN : p.error_rate]) }],
      { ...opts, format: (v) => `${fmtNum(v * 100, 2)}%`, yMax: Math.max(0.01, ...pts.map((p) => p.error_rate || 0)) });
    $('chart-note').textContent = `${pts.length} points, ${d.step >= 3600 ? d.step / 3600 + ' h' : d.step / 60 + ' min'} each${d.note ? ' — ' + d.note : ''}`;
    document.body.dataset.charts = 'ready';
  } catch (e) {
    failed(e);
  }
}

async function renderHistory() {
  const id = S.param;
  try {
    const d = await api(`/v1/audit?subject=${encodeURIComponent(id)}`);
    if (S.view !== 'node' || S.param !== id) return;
    const rows = d.audit.filter((a) => MODEL_ACTIONS.test(a.action)).reverse();
    const tbody = $('history-table').tBodies[0];
    tbody.replaceChildren(...rows.map((a) => {
      const back = /rolled_back|rollback|downgrade|failed/.test(a.action + ' ' + a.detail);
      const cls = back ? 'rollback' : a.action === 'node_event:model_switched' ? 'model-change' : '';
      return h('tr', { class: cls }, h('td', null, fmtTime(a.time)), h('td', { class: 'mono' }, a.action),
        h('td', { class: 'detail' }, a.detail));
    }));
    if (!rows.length) tbody.replaceChildren(h('tr', null, h('td', { colspan: 3, class: 'muted' }, 'No model change recorded for this node.')));
  } catch (e) {
    failed(e);
  }
}

// ------------------------------------------------------------------ audit

function renderAudit() {
  const q = $('audit-filter').value.trim().toLowerCase();
  const rows = [];
  for (let i = S.audit.length - 1; i >= 0 && rows.length < 1000; i--) {
    const a = S.audit[i];
    if (q && !`${a.actor} ${a.action} ${a.subject} ${a.detail}`.toLowerCase().includes(q)) continue;
    const subject = /^r-[0-9a-f]{12}$/.test(a.subject) ? h('a', { href: `#/rollouts/${a.subject}`, class: 'mono' }, a.subject)
      : S.nodes.has(a.subject) ? h('a', { href: `#/node/${encodeURIComponent(a.subject)}`, class: 'mono' }, a.subject)
        : h('span', { class: 'mono' }, a.subject);
    rows.push(h('tr', { dataset: { id: a.id, action: a.action } }, h('td', null, fmtTime(a.time)), h('td', { class: 'mono' }, a.actor),
      h('td', { class: 'mono' }, a.action), h('td', null, subject), h('td', { class: 'detail' }, a.detail)));
  }
  $('audit-table').tBodies[0].replaceChildren(...rows);
  $('audit-count').textContent = `${rows.length} shown of the latest ${S.audit.length} decisions`;
}

// ------------------------------------------------------------------ routing

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [view, ...rest] = hash.split('/');
  let v = view || 'fleet';
  const param = decodeURIComponent(rest.join('/'));
  if (!S.token) v = 'login';
  else if (v === 'login') v = 'fleet';
  if (!['login', 'fleet', 'rollouts', 'node', 'audit'].includes(v)) v = 'fleet';
  const changed = S.view !== v || S.param !== param;
  S.view = v;
  S.param = param;
  document.body.dataset.view = v;
  for (const sec of document.querySelectorAll('main > .view')) sec.hidden = sec.id !== `${v}-view`;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.nav === (v === 'node' ? 'fleet' : v));
  if (v === 'login') {
    $('token').focus();
    return;
  }
  if (!S.stream) {
    setLive(false);
    runStream();
  }
  if (!changed) return;
  clearInterval(chartTimer);
  chartTimer = null;
  document.body.dataset.charts = '';
  if (v === 'rollouts') {
    S.rolloutDetail = null;
    if (param) loadRolloutDetail(param);
  }
  if (v === 'node') {
    for (const b of document.querySelectorAll('#ranges button')) b.classList.toggle('active', Number(b.dataset.range) === S.range);
    renderNodeHead();
    loadCharts();
    renderHistory();
    chartTimer = setInterval(loadCharts, 10000);
  }
  renderAll();
}

function init() {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    $('login-error').hidden = true;
    S.token = token;
    try {
      await api('/v1/dashboard/rollouts');
    } catch (e) {
      S.token = '';
      $('login-error').textContent = e instanceof Unauthorized ? 'The controller refused this token.' : e.message;
      $('login-error').hidden = false;
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    if (!location.hash || location.hash === '#/login') location.hash = '#/fleet';
    route();
  });
  $('logout').addEventListener('click', () => signOut(''));
  for (const id of ['selector', 'search', 'group-by']) $(id).addEventListener('input', () => renderFleet());
  $('audit-filter').addEventListener('input', () => renderAudit());
  $('rollout-form').addEventListener('submit', submitRollout);
  for (const b of document.querySelectorAll('#ranges button')) {
    b.addEventListener('click', () => {
      S.range = Number(b.dataset.range);
      for (const o of document.querySelectorAll('#ranges button')) o.classList.toggle('active', o === b);
      loadCharts();
    });
  }
  window.addEventListener('hashchange', route);
  setInterval(tickAges, 2000);
  route();
}

init();
