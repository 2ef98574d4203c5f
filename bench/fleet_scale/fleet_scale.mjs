#!/usr/bin/env node
// The fleet at scale: one Mosquitto, the real `hearth controller`, and `hearth fleet sim` with
// N simulated nodes, then a 4-batch rollout (1%, 10%, 50%, 100%, bake 0 s, one gate).
//
//   node bench/fleet_scale/fleet_scale.mjs [--hearth build/bin/hearth] [--sizes 100,1000,10000]
//        [--telemetry-interval 0] [--step-ms 100] [--max-queued 1000000] [--keep]
//
// For each N it reports:
//   enroll      time to enroll the N nodes through the controller's API (join token + CSR each)
//   connect     time until all N are connected over mutual TLS
//   rollout     from `rollout start` to the rollout seen succeeded (`rollout status --wait`
//               polls every 0.5 s, so this is up to 0.5 s late)
//   decision    the controller's latency to start batch k+1 after the last final report of
//               batch k (sim timeline: last final report sent -> first desired state received),
//               max over the batch transitions; the last batch's decision is in `rollout`
//   msgs/s      MQTT messages through the broker during the rollout: every message the sim
//               published (each delivered once to the controller) and received (each published
//               once by the controller), counted in and out: 2 x (published + received) / time
//   ctl RSS     the controller's peak resident memory (VmHWM) over its whole run
//   ctl CPU     the controller's CPU time during the rollout / the rollout's wall time
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return acc;
}, []));
const hearth = path.resolve(args.hearth ?? 'build/bin/hearth');
const sizes = (args.sizes ?? '100,1000,10000').split(',').map(Number);
const telemetry = args['telemetry-interval'] ?? '0';
const stepMs = args['step-ms'] ?? '100';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HZ = 100;  // /proc clock ticks per second (sysconf(_SC_CLK_TCK) on Linux x86-64)

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitTcp(port, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`port ${port} did not open in ${seconds} s`);
}

// Processes get 65536 open files where allowed, else the hard limit (a sim node holds three).
function start(cmd, argv, log) {
  const out = fs.openSync(log, 'a');
  const quoted = [cmd, ...argv].map((a) => `'${String(a).replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('sh', ['-c', `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ${quoted}`],
    { stdio: ['ignore', out, out] });
  child.exited = new Promise((resolve) => child.on('exit', resolve));
  return child;
}

function procStat(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / HZ;  // utime + stime
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((status.match(new RegExp(`${k}:\\s+(\\d+)`)) ?? [0, 0])[1]);
  return { cpu, rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

async function waitFor(pred, seconds, what, everyMs = 200) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (pred()) return;
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

function readJson(file) {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')); } catch { return null; }
}

async function runOne(n) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-fleet-scale-'));
  fs.chmodSync(tmp, 0o711);  // Mosquitto started as root drops to its own user
  const dir = path.join(tmp, 'fleet');
  const [bport, cport] = [await freePort(), await freePort()];
  execFileSync(hearth, ['fleet', 'init', dir, '--name', 'scale', '--controller-url', `https://127.0.0.1:${cport}`,
    '--broker-url', `mqtts://127.0.0.1:${bport}`, '--json']);
  const procs = [];
  try {
    // `fleet init` lets the broker queue 200000 messages (256 MiB) for a client (it was 1000, and
    // the broker dropped the controller's QoS 1 reports at 1000 nodes: "Outgoing messages are
    // being dropped for client hearth-controller"). The bench raises the count further so that
    // the controller's own speed is what is measured.
    fs.appendFileSync(`${dir}/broker/mosquitto.conf`, `max_queued_messages ${args['max-queued'] ?? 1000000}\n`);
    const broker = start('/usr/sbin/mosquitto', ['-c', `${dir}/broker/mosquitto.conf`], `${tmp}/mosquitto.log`);
    procs.push(broker);
    await waitTcp(bport, 15);
    const ctl = start(hearth, ['controller', '--fleet', dir], `${tmp}/controller.log`);
    procs.push(ctl);
    await waitTcp(cport, 15);
    const ctlPid = ctl.pid;  // sh exec'd the controller: same pid

    const t0 = Date.now();
    const stats = `${tmp}/sim-stats.json`, timeline = `${tmp}/timeline.jsonl`, simLog = `${tmp}/sim.log`;
    const sim = start(hearth, ['fleet', '--fleet', dir, 'sim', '--nodes', n, '--telemetry-interval', telemetry,
      '--step-ms', stepMs, '--timeline', timeline, '--stats', stats, '--enroll-parallel', '4'], simLog);
    procs.push(sim);
    await waitFor(() => /node\(s\) enrolled/.test(fs.readFileSync(simLog, 'utf8')), 60 + n / 5, 'enrollment');
    const enrollS = Number(fs.readFileSync(simLog, 'utf8').match(/enrolled \(([\d.]+) s\)/)[1]);
    await waitFor(() => /connected in/.test(fs.readFileSync(simLog, 'utf8')), 60 + n / 20, 'connections');
    const connectS = Number(fs.readFileSync(simLog, 'utf8').match(/connected in ([\d.]+) s/)[1]);
    // Every node's first report is in the controller's database before the rollout starts.
    await waitFor(() => {
      const out = execFileSync(hearth, ['fleet', '--fleet', dir, 'nodes', '--json'], { maxBuffer: 1 << 28 });
      const nodes = JSON.parse(out).nodes;
      return nodes.length === n && nodes.every((x) => x.presence === 'online' && x.state !== '');
    }, 120 + n / 10, 'every node online in the controller', 2000);
    const settleS = (Date.now() - t0) / 1000 - enrollS - connectS;
    await sleep(1000);

    const s0 = readJson(stats), c0 = procStat(ctlPid);
    const tStart = Date.now();
    const digest = 'sha256:' + 'ab'.repeat(32);
    const id = execFileSync(hearth, ['fleet', '--fleet', dir, 'rollout', 'start', `bench/model@${digest}`,
      '--batches', '1%,10%,50%,100%', '--gate', 'decode_tok_s > 5', '--bake', '0s', '--max-failures', '0',
      '--offline-timeout', '10m', '--mirror', 'http://127.0.0.1:9']).toString().trim();
    const startCallS = (Date.now() - tStart) / 1000;
    let peakRss = 0;
    const sampler = setInterval(() => { peakRss = Math.max(peakRss, procStat(ctlPid).rssMb); }, 250);
    const st = spawn(hearth, ['fleet', '--fleet', dir, 'rollout', 'status', id, '--wait', '--timeout', '30m', '--json']);
    let out = '';
    st.stdout.on('data', (d) => { out += d; });
    await new Promise((resolve) => st.on('exit', resolve));
    const tEnd = Date.now();
    clearInterval(sampler);
    const c1 = procStat(ctlPid), s1 = readJson(stats);
    const status = JSON.parse(out);
    if (status.state !== 'succeeded') throw new Error(`rollout ${id}: ${status.state} ${status.reason}`);

    // Decision latency per batch transition, from the sim's timeline (wall-clock seconds).
    const batchOf = new Map();
    status.batches.forEach((b, k) => b.nodes.forEach((x) => batchOf.set(x.node, k)));
    const lastFinal = [], firstDesired = [];
    for (const line of fs.readFileSync(timeline, 'utf8').split('\n')) {
      if (!line) continue;
      const e = JSON.parse(line);
      if (e.rollout !== id) continue;
      const k = batchOf.get(e.node);
      if (e.kind === 'desired') firstDesired[k] = Math.min(firstDesired[k] ?? Infinity, e.t);
      else lastFinal[k] = Math.max(lastFinal[k] ?? 0, e.t);
    }
    const decisions = [];
    for (let k = 0; k + 1 < status.batches.length; ++k) decisions.push(firstDesired[k + 1] - lastFinal[k]);
    const lastBatch = status.batches.length - 1;
    const wall = (tEnd - tStart) / 1000;
    const msgs = 2 * ((s1.published - s0.published) + (s1.received - s0.received));
    return {
      n, enrollS, connectS, startCallS, rolloutS: wall,
      decisionsS: decisions, lastDecisionS: tEnd / 1000 - lastFinal[lastBatch],
      msgsPerS: msgs / wall, ctlHwmMb: c1.hwmMb, ctlPeakRssDuringMb: peakRss,
      ctlCpu: (c1.cpu - c0.cpu) / wall, batches: status.batches.map((b) => b.nodes.length),
      setupS: (tStart - t0) / 1000, settleS,
    };
  } finally {
    for (const p of procs.reverse()) {
      p.kill('SIGTERM');
      await Promise.race([p.exited, sleep(5000)]);
      p.kill('SIGKILL');
    }
    if (args.keep) console.error(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

console.log('| nodes | batches | enroll | connect (+ controller caught up) | rollout start→succeeded | decision latency (batch 1→2, 2→3, 3→4) | broker msgs/s | controller peak RSS | controller CPU |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const n of sizes) {
  const r = await runOne(n);
  const f = (x) => x.toFixed(2);
  console.log(`| ${r.n} | ${r.batches.join('/')} | ${r.enrollS.toFixed(1)} s | ${r.connectS.toFixed(1)} s (+${r.settleS.toFixed(1)} s) | ` +
    `${f(r.rolloutS)} s (start call ${f(r.startCallS)} s) | ${r.decisionsS.map(f).join(', ')} s (last: ≤ ${f(r.lastDecisionS)} s) | ` +
    `${Math.round(r.msgsPerS)} | ${r.ctlHwmMb.toFixed(0)} MB | ${(100 * r.ctlCpu).toFixed(0)}% of a core |`);
}
