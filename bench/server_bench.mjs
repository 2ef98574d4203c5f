#!/usr/bin/env node
// Benchmark of `hearth serve`: aggregate decode speed with 1, 4 and 8 concurrent streams and
// the time to first token. No dependencies beyond Node 20 (fetch).
//
//   node bench/server_bench.mjs --model FILE [--hearth build/bin/hearth] [--streams 1,4,8]
//        [--tokens 64] [--prompt-tokens 64] [--threads N] [--reps 2]
//
// One server with --parallel = the largest stream count. For each level, every stream sends a
// different prompt (so no stream reuses another's cache) of --prompt-tokens token ids, asks
// for --tokens tokens with ignore_eos, and is timed from request to first token (TTFT) and to
// its last token. Aggregate decode tok/s = sum over streams of (tokens - 1) / (time from the
// first first-token to the last last-token).
import { spawn } from 'node:child_process';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return acc;
}, []));
if (!args.model) {
  console.error('usage: node bench/server_bench.mjs --model FILE [--hearth BIN] [--streams 1,4,8] [--tokens 64]');
  process.exit(2);
}
const hearth = args.hearth ?? 'build/bin/hearth';
const streams = (args.streams ?? '1,4,8').split(',').map(Number);
const nTokens = Number(args.tokens ?? 64);
const promptTokens = Number(args['prompt-tokens'] ?? 64);
const reps = Number(args.reps ?? 2);
const parallel = Math.max(...streams);

function startServer() {
  const a = ['serve', args.model, '--host', '127.0.0.1', '--port', '0', '--parallel', String(parallel), '-c', '1024'];
  if (args.threads) a.push('--threads', args.threads);
  const child = spawn(hearth, a, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEARTH_LOG: 'info' } });
  let log = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', async (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/[^\s]+:(\d+)/);
      if (m && !child.port) {
        child.port = Number(m[1]);
        for (let i = 0; i < 600; i++) {
          try {
            if ((await fetch(`http://127.0.0.1:${child.port}/health`)).status === 200) return resolve(child);
          } catch { /* loading */ }
          await new Promise((r) => setTimeout(r, 200));
        }
        reject(new Error(log));
      }
    });
    child.on('exit', (code) => reject(new Error(`hearth serve exited (${code}):\n${log}`)));
  });
}

async function oneStream(port, i) {
  // Exactly --prompt-tokens token ids (a model's tokenizer can split words into many tokens),
  // different per stream so that no stream reuses another's cache.
  const ids = Array.from({ length: promptTokens }, (_, k) => 1000 + ((k * 31 + i * 977) % 20000));
  const body = {
    prompt: ids,
    max_tokens: nTokens, temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true },
  };
  const t0 = performance.now();
  const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST', body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  let first = 0;
  let usage = null;
  let buf = '';
  const decoder = new TextDecoder();
  for await (const chunk of r.body) {
    buf += decoder.decode(chunk, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k);
      buf = buf.slice(k + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      if (!first && j.choices?.[0]?.text) first = performance.now();
    }
  }
  const end = performance.now();
  return { start: t0, first, end, tokens: usage.completion_tokens, prompt: usage.prompt_tokens };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const server = await startServer();
try {
  await oneStream(server.port, 999); // warm-up
  console.log(`model: ${path.basename(args.model)} | ${nTokens} tokens per stream, ${promptTokens}-token prompts, ` +
    `--parallel ${parallel}, ${reps} reps (best aggregate kept)`);
  console.log('| streams | aggregate decode tok/s | per-stream decode tok/s | TTFT median (ms) | TTFT max (ms) |');
  console.log('|---:|---:|---:|---:|---:|');
  let id = 0;
  for (const n of streams) {
    let best = null;
    for (let r = 0; r < reps; r++) {
      const res = await Promise.all(Array.from({ length: n }, () => oneStream(server.port, id++)));
      const t0 = Math.min(...res.map((x) => x.first));
      const t1 = Math.max(...res.map((x) => x.end));
      const decoded = res.reduce((s, x) => s + x.tokens - 1, 0);
      const agg = decoded / ((t1 - t0) / 1000);
      const per = median(res.map((x) => (x.tokens - 1) / ((x.end - x.first) / 1000)));
      const ttft = res.map((x) => x.first - x.start);
      if (!best || agg > best.agg) best = { agg, per, ttftMed: median(ttft), ttftMax: Math.max(...ttft) };
    }
    console.log(`| ${n} | ${best.agg.toFixed(1)} | ${best.per.toFixed(1)} | ${best.ttftMed.toFixed(0)} | ${best.ttftMax.toFixed(0)} |`);
  }
} finally {
  server.kill('SIGTERM');
}
