// Shared by the conformance tests that drive the Python test servers with Google's
// official Node clients (tests/gcs/conformance, tests/pubsub/conformance).
//
// Importing this module installs a network guard: every outgoing connection is
// recorded in `connects`, and one to anything but 127.0.0.1 is refused (and
// recorded in `blocked`, which the tests assert is empty).  It also removes the
// environment that could send a client elsewhere (proxies, credentials, emulators)
// and turns off metadata-server detection.

import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const PYTHON = process.env.PYTHON ||
  (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

// ---------------------------------------------------------------- network guard
export const connects = []; // every outgoing connection attempt: {host, port}
export const blocked = [];
export const LOCAL = new Set(['127.0.0.1', 'localhost', '::1', '::ffff:127.0.0.1']);
const origConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let opts = args[0];
  if (Array.isArray(opts)) opts = opts[0]; // internal normalized form
  let host, port;
  if (opts && typeof opts === 'object') {
    host = opts.host ?? (opts.path ? 'unix:' + opts.path : 'localhost');
    port = opts.port;
  } else {
    port = opts;
    host = typeof args[1] === 'string' ? args[1] : 'localhost';
  }
  connects.push({ host, port });
  if (!LOCAL.has(host)) {
    blocked.push({ host, port });
    process.nextTick(() => this.destroy(new Error(`conformance: blocked connection to ${host}:${port}`)));
    return this;
  }
  return origConnect.apply(this, args);
};

// the clients must not find a metadata server, a proxy or other credentials
for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy',
  'GOOGLE_APPLICATION_CREDENTIALS', 'GOOGLE_CLOUD_PROJECT', 'GCLOUD_PROJECT', 'STORAGE_EMULATOR_HOST',
  'PUBSUB_EMULATOR_HOST', 'GCE_METADATA_HOST', 'GCE_METADATA_IP']) {
  delete process.env[k];
}
process.env.METADATA_SERVER_DETECTION = 'none';

// ---------------------------------------------------------------- servers
// startServer(script, args, dir): run a test server (it takes --port 0 --port-file F
// --exit-with-parent) and wait for its port: {proc, port, url}.
export async function startServer(script, args, dir) {
  const name = path.basename(script, '.py');
  const portFile = path.join(dir, `${name}.port`);
  fs.rmSync(portFile, { force: true });
  const proc = spawn(PYTHON, [script, '--port', '0', '--port-file', portFile, '--exit-with-parent', ...args],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  const end = Date.now() + 20000;
  while (!fs.existsSync(portFile)) {
    if (proc.exitCode !== null) throw new Error(`${name}.py exited ${proc.exitCode}`);
    if (Date.now() > end) throw new Error(`${name}.py did not write its port file`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const port = fs.readFileSync(portFile, 'utf8').trim();
  return { proc, port: Number(port), url: `http://127.0.0.1:${port}` };
}

// stopServer(srv): SIGTERM by PID, SIGKILL after 5 s.
export async function stopServer(srv) {
  const proc = srv && srv.proc;
  if (!proc || proc.exitCode !== null) return;
  proc.kill('SIGTERM');
  await new Promise((r) => { proc.once('exit', r); setTimeout(r, 5000).unref(); });
  if (proc.exitCode === null) proc.kill('SIGKILL');
}

// control(url, p, body): a test server's /_test/ API (GET without a body, else POST).
export async function control(url, p, body) {
  const r = await fetch(`${url}/_test/${p}`, body === undefined ? {} : {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, `control ${p}`);
  return r.json();
}
