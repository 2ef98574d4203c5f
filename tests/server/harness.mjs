// Starts and stops `hearth serve` for the client tests: a free loopback port (--port 0, read
// back from the "listening on" log line), then /health polled until the model is loaded.
import { spawn } from 'node:child_process';

export const HEARTH = process.env.HEARTH_BIN;
export const MODEL = process.env.HEARTH_TEST_MODEL;

// `model`: what to serve (default: the test model file; a store reference works too; null: none).
export async function startServer(extraArgs = [], { env = {}, model = MODEL } = {}) {
  if (!HEARTH || !MODEL) throw new Error('set HEARTH_BIN and HEARTH_TEST_MODEL');
  const ctx = extraArgs.includes('-c') ? [] : ['-c', '512'];
  const args = ['serve', ...(model ? [model] : []), '--host', '127.0.0.1', '--port', '0', ...ctx, ...extraArgs];
  const child = spawn(HEARTH, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HEARTH_LOG: 'info', ...env } });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hearth serve did not start:\n${log}`)), 30000);
    child.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/listening on https?:\/\/[^\s]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hearth serve exited with ${code}:\n${log}`));
    });
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const r = await fetch(`${base}/health`);
      if (r.status === 200) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`hearth serve never became healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    port,
    child,
    log: () => log,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

// Reads one Prometheus sample value (first match) from /metrics.
export async function metric(server, name, headers = {}) {
  const text = await (await fetch(`${server.base}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}
