#!/usr/bin/env node
// Abuse benchmark of `hearth serve`: the p99 latency of normal traffic and the server's peak
// RSS, without and then with an attack (slowloris, a header flood and a chunked-body flood,
// concurrently). Loopback only, bounded in time and connection count. Node 20, no dependencies.
//
//   node bench/server_abuse.mjs --model FILE [--hearth build/bin/hearth] [--seconds 10]
//        [--slowloris 200] [--header-flood 4] [--chunked-flood 4] [-- extra serve flags]
//
// Normal traffic: one client on 127.0.0.1 sending POST /v1/completions (8 tokens) back to back,
// plus GET /health, each timed. The attack runs in a worker thread (so it does not slow the
// measuring event loop) from other loopback addresses, one per kind, as separate clients would:
// 127.0.0.2 holds --slowloris connections that dribble a header byte a second; 127.0.0.3 sends
// endless header lines; 127.0.0.4 sends endless chunked bodies without the API key (the server requires one). Closed
// attack connections are reopened after 50 ms. Peak RSS is VmHWM from /proc/PID/status.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

// The server requires this key; normal traffic sends it, the attack does not.
const KEY = 'sk-bench-abuse';

if (!isMainThread) {
  attackWorker(workerData);
} else {
  await main();
}

function attackWorker({ port, slowloris, headerFlood, chunkedFlood }) {
  const stats = { opened: 0, closedByServer: 0, bytesSent: 0, responses: {} };
  let stopping = false;
  const sockets = new Set();
  const chunk = Buffer.from(`10000\r\n${'a'.repeat(0x10000)}\r\n`);
  const headerLines = Buffer.from(`X-Flood: ${'f'.repeat(1000)}\r\n`.repeat(64));

  function open(localAddress, onConnect) {
    if (stopping) return;
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    sockets.add(s);
    stats.opened++;
    let seen = '';
    s.on('data', (d) => {
      if (seen.length < 16) {
        seen += d.toString('latin1');
        const m = seen.match(/^HTTP\/1\.1 (\d{3})/);
        if (m) stats.responses[m[1]] = (stats.responses[m[1]] ?? 0) + 1;
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      sockets.delete(s);
      if (s.timer) clearInterval(s.timer);
      if (stopping) return;
      stats.closedByServer++;
      setTimeout(() => open(localAddress, onConnect), 50);
    });
    s.on('connect', () => onConnect(s));
  }
  // Writes `buf` whenever the socket can take it, until it closes.
  function pump(s, buf) {
    const more = () => {
      while (!s.destroyed && !stopping) {
        stats.bytesSent += buf.length;
        if (!s.write(buf)) return s.once('drain', more);
      }
    };
    more();
  }

  for (let i = 0; i < slowloris; i++) {
    open('127.0.0.2', (s) => {
      s.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      s.timer = setInterval(() => s.write('X'), 1000);
    });
  }
  for (let i = 0; i < headerFlood; i++) {
    open('127.0.0.3', (s) => {
      s.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      pump(s, headerLines);
    });
  }
  for (let i = 0; i < chunkedFlood; i++) {
    open('127.0.0.4', (s) => {
      s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
      pump(s, chunk);
    });
  }
  parentPort.on('message', (m) => {
    if (m !== 'stop') return;
    stopping = true;
    for (const s of sockets) s.destroy();
    parentPort.postMessage(stats);
  });
}

async function main() {
  const argv = process.argv.slice(2);
  const dashdash = argv.indexOf('--');
  const own = dashdash < 0 ? argv : argv.slice(0, dashdash);
  const extra = dashdash < 0 ? [] : argv.slice(dashdash + 1);
  const args = Object.fromEntries(own.reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []));
  if (!args.model) {
    console.error('usage: node bench/server_abuse.mjs --model FILE [--hearth BIN] [--seconds 10] [-- serve flags]');
    process.exit(2);
  }
  const hearth = args.hearth ?? 'build/bin/hearth';
  const seconds = Math.min(Number(args.seconds ?? 10), 120);
  const attack = {
    slowloris: Math.min(Number(args.slowloris ?? 200), 2000),
    headerFlood: Math.min(Number(args['header-flood'] ?? 4), 64),
    chunkedFlood: Math.min(Number(args['chunked-flood'] ?? 4), 64),
  };

  const server = await startServer(hearth, args.model, extra);
  const base = `http://127.0.0.1:${server.port}`;
  try {
    await traffic(base, 1);  // warm up
    const quiet = await traffic(base, seconds);
    const rssQuiet = peakRss(server.pid);

    const worker = new Worker(new URL(import.meta.url), { workerData: { port: server.port, ...attack } });
    await new Promise((r) => setTimeout(r, 1000));  // let the attack ramp up
    const loud = await traffic(base, seconds);
    const rssLoud = peakRss(server.pid);
    worker.postMessage('stop');
    const stats = await new Promise((r) => worker.once('message', r));
    await worker.terminate();

    const row = (name, t, rss) =>
      `| ${name} | ${t.ok} | ${t.failed} | ${t.p50.toFixed(1)} | ${t.p99.toFixed(1)} | ${t.max.toFixed(1)} | ${rss} |`;
    console.log(`hearth serve ${args.model} ${extra.join(' ')}; ${seconds} s per phase`);
    console.log('| phase | normal requests ok | failed | p50 ms | p99 ms | max ms | server peak RSS (MiB) |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    console.log(row('no attack', quiet, rssQuiet));
    console.log(row(`attack (${attack.slowloris} slowloris, ${attack.headerFlood} header flood, ${attack.chunkedFlood} chunked flood)`, loud, rssLoud));
    console.log(`attack: ${stats.opened} connections opened, ${stats.closedByServer} closed by the server, ` +
                `${(stats.bytesSent / 2 ** 20).toFixed(0)} MiB sent, responses ${JSON.stringify(stats.responses)}`);
    console.log(JSON.stringify({ seconds, attack, quiet, loud, rss_mib: { quiet: rssQuiet, attack: rssLoud }, stats }));
  } finally {
    server.kill('SIGTERM');
  }
}

// Back-to-back normal requests for `seconds`: a completion, then a health check.
async function traffic(base, seconds) {
  const lat = [];
  let ok = 0, failed = 0;
  const end = Date.now() + seconds * 1000;
  const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
  while (Date.now() < end) {
    for (const [url, init] of [[`${base}/v1/completions`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` } }],
                               [`${base}/health`, {}]]) {
      const t0 = performance.now();
      try {
        const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10000) });
        await r.arrayBuffer();
        if (r.status === 200) ok++; else failed++;
      } catch {
        failed++;
      }
      lat.push(performance.now() - t0);
    }
  }
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  return { ok, failed, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] ?? 0 };
}

function peakRss(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
  return m ? Math.round(Number(m[1]) / 1024) : -1;
}

function startServer(hearth, model, extra) {
  const a = ['serve', model, '--host', '127.0.0.1', '--port', '0', '-c', '256', '--api-key', KEY, ...extra];
  const child = spawn(hearth, a, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEARTH_LOG: 'info' } });
  let log = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', async (d) => {
      if (child.port) return;  // the access log is not kept
      log += d;
      const m = log.match(/listening on http:\/\/[^\s]+:(\d+)/);
      if (m) {
        child.port = Number(m[1]);
        for (let i = 0; i < 600; i++) {
          try {
            if ((await fetch(`http://127.0.0.1:${child.port}/health`)).status === 200) return resolve(child);
          } catch { /* loading */ }
          await new Promise((r) => setTimeout(r, 100));
        }
        reject(new Error(log));
      }
    });
    child.on('exit', (code) => reject(new Error(`hearth serve exited (${code}):\n${log}`)));
  });
}
