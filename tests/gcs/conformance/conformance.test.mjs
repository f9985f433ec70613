// Conformance of tests/gcs/gcs_server.py with Google's official Node client
// (@google-cloud/storage, pinned in package-lock.json).
//
// The server runs as a subprocess on 127.0.0.1 with auth required; a fresh RSA
// key (node crypto) goes into a service-account key file whose token_uri is the
// server's /token, and the client authenticates with it (useAuthWithCustomEndpoint).
// Every socket this process opens is checked: anything but 127.0.0.1 is refused
// and fails the run.
//
//   ./run.sh            (npm ci when needed, then node --test)
//   node --test conformance.test.mjs
//
// One workaround, and why: gtoken 7 (google-auth-library 9, which storage 7
// uses) ignores the key file's token_uri and always posts the JWT to
// https://www.googleapis.com/oauth2/v4/token with that URL as `aud`.  We wrap
// the auth client's transporter to send that one URL to the test server
// instead, and start the server with --audience for it (Google accepts that
// audience too).
//
// A bug of storage 7.22.0 that this test shows (and works around): File#save /
// createWriteStream with resumable uploads builds its upload config in
// startResumableUpload_ without `useAuthWithCustomEndpoint` (createResumableUpload
// passes it), so with a custom apiEndpoint those uploads go out without any
// credentials.  The test checks that the server refuses them (401), then gives
// the files it uploads resumably a request interceptor that adds the Bearer token
// of the same auth client.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// installs the network guard (nothing but 127.0.0.1) and clears proxies/credentials
import { LOCAL, blocked, connects, control as controlAt, startServer, stopServer } from '../../conformance_lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVER = path.join(HERE, '..', 'gcs_server.py');
const GTOKEN_URL = 'https://www.googleapis.com/oauth2/v4/token';
const SA_EMAIL = 'conformance@hylake-test.iam.gserviceaccount.com';
const PROJECT = 'hylake-test';
const KiB = 1024;

// ---------------------------------------------------------------- server
let srv, url, tmp, storage, bucket;
const bucketName = 'conf-' + crypto.randomBytes(4).toString('hex');
const control = (p, body) => controlAt(url, p, body);

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hylake-gcs-conf-'));
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const kid = crypto.randomBytes(20).toString('hex');
  fs.writeFileSync(path.join(tmp, 'sa.pub.pem'), publicKey);
  srv = await startServer(SERVER, ['--require-auth',
    '--public-key', `${SA_EMAIL}#${kid}=${path.join(tmp, 'sa.pub.pem')}`,
    '--audience', GTOKEN_URL], tmp);
  url = srv.url;
  process.env.GCE_METADATA_HOST = `127.0.0.1:${srv.port}`; // should anything probe it: us, logged

  const keyFile = path.join(tmp, 'sa.json');
  fs.writeFileSync(keyFile, JSON.stringify({
    type: 'service_account', project_id: PROJECT, private_key_id: kid,
    private_key: privateKey, client_email: SA_EMAIL, client_id: '100000000000000000002',
    auth_uri: `${url}/unused`, token_uri: `${url}/token`,
    auth_provider_x509_cert_url: `${url}/unused`, client_x509_cert_url: `${url}/unused`,
    universe_domain: 'googleapis.com',
  }), { mode: 0o600 });

  const { Storage } = await import('@google-cloud/storage');
  storage = new Storage({
    apiEndpoint: url,
    projectId: PROJECT,
    keyFilename: keyFile,
    useAuthWithCustomEndpoint: true,
    retryOptions: { autoRetry: false },
  });
  const client = await storage.authClient.getClient();
  const t = client.transporter;
  const orig = t.request.bind(t);
  t.request = (opts) => orig(opts.url === GTOKEN_URL ? { ...opts, url: `${url}/token` } : opts);
  [bucket] = await storage.createBucket(bucketName);
});

after(async () => {
  await stopServer(srv);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const T = { timeout: 60000 };

// ---------------------------------------------------------------- tests
test('simple upload (multipart) and download with hash validation', T, async () => {
  const f = bucket.file('dir/hello world é.txt');
  const body = Buffer.from('hello, conformance\n'.repeat(100));
  await f.save(body, { resumable: false, contentType: 'text/plain', metadata: { metadata: { k: 'v' } } });
  const [got] = await f.download(); // validates crc32c/md5 against x-goog-hash
  assert.deepEqual(got, body);
  const [meta] = await f.getMetadata();
  assert.equal(meta.name, 'dir/hello world é.txt');
  assert.equal(meta.size, String(body.length));
  assert.equal(meta.contentType, 'text/plain');
  assert.equal(meta.md5Hash, crypto.createHash('md5').update(body).digest('base64'));
  assert.equal(meta.metadata.k, 'v');
  assert.match(meta.timeCreated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(typeof meta.generation, 'string');
});

const BUG_OBJECT = 'bug/unauthenticated.bin';

async function withBearer(file) {
  // the workaround described at the top: the token comes from the same auth client
  const token = await storage.authClient.getAccessToken();
  assert.ok(token);
  file.interceptors.push({
    request: (o) => ({ ...o, headers: { ...(o.headers || {}), Authorization: `Bearer ${token}` } }),
  });
  return file;
}

test('storage 7.22.0 sends File#save resumable uploads without credentials: refused', T, async () => {
  const f = bucket.file(BUG_OBJECT);
  await assert.rejects(f.save(crypto.randomBytes(300 * KiB), { resumable: true }),
    (e) => e.code === 401 || e.status === 401 || /401/.test(String(e.message)));
  assert.deepEqual(await f.exists(), [false]);
  const log = (await control('log')).requests.filter((e) => e.kind.startsWith('upload.') &&
    (e.object === BUG_OBJECT || e.query.includes(encodeURIComponent(BUG_OBJECT))));
  assert.ok(log.length >= 1 && log.every((e) => e.auth === 'none' && e.status === 401),
    JSON.stringify(log));
});

test('resumable uploads above 256 KiB: one request, and 256 KiB chunks', T, async () => {
  const data = crypto.randomBytes(700 * KiB + 3);
  const f1 = await withBearer(bucket.file('big/one-shot.bin'));
  await f1.save(data, { resumable: true });
  const f2 = await withBearer(bucket.file('big/chunked.bin'));
  await f2.save(data, { resumable: true, chunkSize: 256 * KiB });
  for (const f of [f1, f2]) {
    const [got] = await f.download();
    assert.ok(got.equals(data), f.name);
    const [m] = await f.getMetadata();
    assert.equal(m.size, String(data.length));
  }
  const log = (await control('log')).requests;
  const chunks = log.filter((e) => e.kind === 'upload.chunk' && e.object === 'big/chunked.bin');
  assert.ok(chunks.length >= 3, `expected several chunk PUTs, saw ${chunks.length}`);
  assert.ok(chunks.some((e) => e.status === 308), 'no 308 Resume Incomplete');
  assert.ok(log.some((e) => e.kind === 'upload.resumable' && e.status === 200));
});

test('ranged download (start/end inclusive)', T, async () => {
  const data = crypto.randomBytes(300 * KiB);
  const f = bucket.file('ranged.bin');
  await f.save(data, { resumable: false });
  const [part] = await f.download({ start: 1000, end: 1999 });
  assert.ok(part.equals(data.subarray(1000, 2000)));
  const [tail] = await f.download({ start: 300 * KiB - 10 });
  assert.ok(tail.equals(data.subarray(300 * KiB - 10)));
  const log = (await control('log')).requests;
  const ranged = log.filter((e) => e.kind === 'objects.media' && e.object === 'ranged.bin' && e.range);
  assert.ok(ranged.some((e) => e.status === 206), 'no 206 for a ranged read');
});

test('list with pagination, prefixes and delimiter', T, async () => {
  const names = [];
  for (let i = 0; i < 7; i++) names.push(`list/f${i}`);
  for (let i = 0; i < 4; i++) names.push(`list/sub${i}/x`);
  await Promise.all(names.map((n) => bucket.file(n).save(Buffer.from(n), { resumable: false })));

  // autoPaginate off, small maxResults: follow nextQuery by hand
  let query = { prefix: 'list/', maxResults: 3, autoPaginate: false };
  const seen = [];
  let pages = 0;
  while (query) {
    const [files, next] = await bucket.getFiles(query);
    assert.ok(files.length <= 3);
    seen.push(...files.map((f) => f.name));
    query = next;
    pages++;
  }
  assert.ok(pages >= 4, `pages: ${pages}`);
  assert.deepEqual(seen.sort(), [...names].sort());

  // autoPaginate on, with the server's tiny pages
  await control('paging', { page_size: 2 });
  try {
    const [all] = await bucket.getFiles({ prefix: 'list/' });
    assert.deepEqual(all.map((f) => f.name).sort(), [...names].sort());
  } finally {
    await control('paging', {});
  }

  // delimiter: prefixes
  const [files, , resp] = await bucket.getFiles({ prefix: 'list/', delimiter: '/', autoPaginate: false });
  assert.deepEqual(files.map((f) => f.name).sort(), names.filter((n) => !n.includes('sub')).sort());
  assert.deepEqual(resp.prefixes, ['list/sub0/', 'list/sub1/', 'list/sub2/', 'list/sub3/']);
});

test('failed precondition: ifGenerationMatch 0 on an existing object is 412', T, async () => {
  const f = bucket.file('precond.txt');
  await f.save('first', { resumable: false });
  await assert.rejects(
    f.save('second', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
    (e) => e.code === 412);
  const [got] = await f.download();
  assert.equal(got.toString(), 'first');
  const [m] = await f.getMetadata();
  await assert.rejects(f.getMetadata({ ifGenerationMatch: Number(m.generation) + 1 }),
    (e) => e.code === 412);
});

test('copy (objects.rewrite), in one call and in several, with preconditions', T, async () => {
  const src = bucket.file('copy/src.bin');
  const body = crypto.randomBytes(2 * 1024 * KiB + 7);
  await src.save(body, { resumable: false, contentType: 'application/x-test', metadata: { metadata: { k: 'v' } } });
  const [srcMeta] = await src.getMetadata();
  const [copied] = await src.copy('copy/dst.bin', { preconditionOpts: { ifGenerationMatch: 0 } });
  const [meta] = await copied.getMetadata();
  assert.equal(meta.size, String(body.length));
  assert.equal(meta.crc32c, srcMeta.crc32c);
  assert.equal(meta.md5Hash, srcMeta.md5Hash);
  assert.equal(meta.contentType, 'application/x-test');
  assert.equal(meta.metadata.k, 'v');
  assert.ok(BigInt(meta.generation) > BigInt(srcMeta.generation));
  const [got] = await copied.download();
  assert.deepEqual(got, body);
  // put-if-absent: the destination exists now
  await assert.rejects(src.copy('copy/dst.bin', { preconditionOpts: { ifGenerationMatch: 0 } }),
    (e) => e.code === 412);
  // the client follows rewriteToken until done
  await control('config', { rewrite_bytes_per_call: 1024 * KiB });
  const mark = (await control('log')).next;
  try {
    await src.copy(bucket.file('copy/big.bin'));
  } finally {
    await control('config', { rewrite_bytes_per_call: 0 });
  }
  const calls = (await control('log')).requests.filter((e) => e.seq > mark && e.kind === 'objects.rewrite');
  assert.equal(calls.length, 3);
  assert.ok(calls.every((e) => e.status === 200));
  assert.ok(calls.slice(1).every((e) => e.query.includes('rewriteToken=')));
  const [big] = await bucket.file('copy/big.bin').download();
  assert.deepEqual(big, body);
});

test('delete', T, async () => {
  const f = bucket.file('gone.txt');
  await f.save('x', { resumable: false });
  assert.deepEqual(await f.exists(), [true]);
  await f.delete();
  assert.deepEqual(await f.exists(), [false]);
  await assert.rejects(f.download(), (e) => e.code === 404);
});

test('authentication went through the server and nothing left 127.0.0.1', T, async () => {
  const log = (await control('log')).requests;
  const tokens = log.filter((e) => e.kind === 'token');
  assert.ok(tokens.length >= 1, 'the token endpoint was never used');
  assert.ok(tokens.every((e) => e.status === 200 && e.jwt && e.jwt.verdict === 'ok'),
    JSON.stringify(tokens.map((e) => e.jwt)));
  assert.ok(tokens.every((e) => e.jwt.iss === SA_EMAIL && e.jwt.alg === 'RS256'));
  const isBug = (e) => e.object === BUG_OBJECT ||
    (e.kind === 'upload.resumable' && e.query.includes(encodeURIComponent(BUG_OBJECT)));
  const api = log.filter((e) => /^(bucket|objects|upload)\./.test(e.kind) && !isBug(e));
  assert.ok(api.length > 20, `only ${api.length} API requests logged`);
  const unauth = api.filter((e) => e.auth !== 'bearer' || e.auth_ok !== true);
  assert.deepEqual(unauth, [], 'API requests without a valid Bearer token');
  assert.deepEqual(log.filter((e) => e.kind === 'metadata'), [], 'metadata server was probed');
  assert.deepEqual(log.filter((e) => e.kind === 'unknown'), [], 'requests the server did not know');
  assert.deepEqual(blocked, [], 'connections to somewhere other than 127.0.0.1');
  assert.ok(connects.length > 0 && connects.every((c) => LOCAL.has(c.host)));
});
