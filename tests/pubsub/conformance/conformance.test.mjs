// Conformance of tests/pubsub/pubsub_server.py with Google's official Node client
// (@google-cloud/pubsub, pinned in package-lock.json): its generated v1
// PublisherClient and SubscriberClient over the REST transport.
//
//   ./run.sh            (npm ci when needed, then node --test)
//   node --test conformance.test.mjs
//
// How the client reaches a plain-http server on 127.0.0.1 (all documented options of
// the generated clients / google-gax 5):
//   * `fallback: 'rest'`: the HTTP/1.1 REST transport instead of gRPC (gax 5 accepts
//     any non-empty string, or true, for it; REST is its only fallback);
//   * `apiEndpoint: '127.0.0.1'`, `port`, `protocol: 'http'` (gax builds the URL
//     from these; https is only the default);
//   * `authClient`: a google-auth-library `Compute` client, i.e. GCE metadata-server
//     credentials, with GCE_METADATA_HOST pointing at the GCS test server, which
//     hands out the tokens; the Pub/Sub server runs with --require-auth and checks
//     each token with the GCS server's /tokeninfo.
// The GCS server also publishes bucket notifications into the Pub/Sub server, and
// the official subscriber pulls and decodes them.
//
// What the client stack does with errors (google-gax 5.0.8, google-auth-library
// 10.9.1): the REST stub sends each request through the auth client's fetch(), which
// is gaxios, and gaxios rejects a non-2xx response itself, so the error reaches the
// caller as a GaxiosError (status = the HTTP code, message = Google's JSON error
// body) rather than as a GoogleError with a gRPC code (which is what gax makes of the
// same body when the auth client's fetch resolves instead).  isError() accepts both
// and checks the HTTP code and the canonical status name.
//
// Every socket this process opens is checked (tests/conformance_lib.mjs): anything
// but 127.0.0.1 is refused and fails the run.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCAL, blocked, connects, control, startServer, stopServer } from '../../conformance_lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PUBSUB = path.join(HERE, '..', 'pubsub_server.py');
const GCS = path.join(HERE, '..', '..', 'gcs', 'gcs_server.py');
const PROJECT = 'hylake-test';
const tag = crypto.randomBytes(4).toString('hex');
const TOPIC = `projects/${PROJECT}/topics/conf-${tag}`;
const SUB = `projects/${PROJECT}/subscriptions/conf-${tag}`;

let tmp, ps, gcs, auth, publisher, subscriber;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hylake-pubsub-conf-'));
  ps = await startServer(PUBSUB, ['--require-auth', '--pull-wait-ms', '300'], tmp);
  gcs = await startServer(GCS, ['--pubsub-url', ps.url], tmp);
  await control(ps.url, 'config', { auth_url: gcs.url, ack_deadline_scale: 0.1 }); // 10 s -> 1 s
  process.env.GCE_METADATA_HOST = `127.0.0.1:${gcs.port}`;

  const { Compute } = await import('google-auth-library');
  const { v1 } = await import('@google-cloud/pubsub');
  auth = new Compute();
  const opts = {
    fallback: 'rest', apiEndpoint: '127.0.0.1', port: ps.port, protocol: 'http',
    authClient: auth, projectId: PROJECT,
  };
  publisher = new v1.PublisherClient(opts);
  subscriber = new v1.SubscriberClient(opts);
});

after(async () => {
  await Promise.allSettled([publisher?.close(), subscriber?.close()]);
  await stopServer(gcs);
  await stopServer(ps);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const T = { timeout: 30000 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function pull(max, returnImmediately = false) {
  const [resp] = await subscriber.pull({ subscription: SUB, maxMessages: max, returnImmediately });
  return resp.receivedMessages || [];
}
const text = (m) => Buffer.from(m.message.data).toString();
const GRPC = { INVALID_ARGUMENT: [3, 400], NOT_FOUND: [5, 404], ALREADY_EXISTS: [6, 409] };

// isError(name): an assert.rejects validator for Google's error `name`
function isError(name) {
  const [grpc, http] = GRPC[name];
  return (e) => {
    if (e.constructor.name === 'GoogleError') return e.code === grpc;
    const body = JSON.parse(e.message);
    return e.status === http && body.error.code === http && body.error.status === name;
  };
}

// ---------------------------------------------------------------- tests
test('topics and subscriptions: create, get, list; Google errors', T, async () => {
  const [topic] = await publisher.createTopic({ name: TOPIC, labels: { suite: 'hylake' } });
  assert.equal(topic.name, TOPIC);
  assert.deepEqual(topic.labels, { suite: 'hylake' });
  assert.equal((await publisher.getTopic({ topic: TOPIC }))[0].name, TOPIC);
  await assert.rejects(publisher.createTopic({ name: TOPIC }), isError('ALREADY_EXISTS'));
  await assert.rejects(publisher.getTopic({ topic: TOPIC + '-missing' }), isError('NOT_FOUND'));

  const [sub] = await subscriber.createSubscription({ name: SUB, topic: TOPIC, ackDeadlineSeconds: 10 });
  assert.equal(sub.name, SUB);
  assert.equal(sub.topic, TOPIC);
  assert.equal(sub.ackDeadlineSeconds, 10);
  assert.equal((await subscriber.getSubscription({ subscription: SUB }))[0].ackDeadlineSeconds, 10);
  await assert.rejects(
    subscriber.createSubscription({ name: SUB + '-bad', topic: TOPIC, ackDeadlineSeconds: 5 }),
    isError('INVALID_ARGUMENT'));
  const [topics] = await publisher.listTopics({ project: `projects/${PROJECT}` });
  assert.ok(topics.some((t) => t.name === TOPIC));
});

test('publish and pull: data, attributes, ids, publishTime; acknowledge', T, async () => {
  const t0 = Date.now() / 1000;
  const [res] = await publisher.publish({
    topic: TOPIC,
    messages: [
      { data: Buffer.from('hello'), attributes: { k: 'v' } },
      { data: Buffer.from([0, 255, 1]) },
    ],
  });
  assert.equal(res.messageIds.length, 2);
  const got = await pull(10);
  assert.deepEqual(got.map((m) => m.message.messageId), res.messageIds);
  assert.equal(text(got[0]), 'hello');
  assert.deepEqual(got[0].message.attributes, { k: 'v' });
  assert.deepEqual([...Buffer.from(got[1].message.data)], [0, 255, 1]);
  const pt = got[0].message.publishTime;
  assert.ok(Math.abs(Number(pt.seconds) - t0) < 30, JSON.stringify(pt));
  assert.equal(typeof pt.nanos, 'number');
  await subscriber.acknowledge({ subscription: SUB, ackIds: got.map((m) => m.ackId) });
  assert.deepEqual(await pull(10, true), []);
});

test('redelivery: after the ack deadline, at once after a nack, not after an extension', T, async () => {
  await publisher.publish({ topic: TOPIC, messages: ['a', 'b', 'c'].map((s) => ({ data: Buffer.from(s) })) });
  const first = Object.fromEntries((await pull(10)).map((m) => [text(m), m]));
  assert.deepEqual(Object.keys(first).sort(), ['a', 'b', 'c']);
  // nack b: delivered again at once, with a new ack id
  await subscriber.modifyAckDeadline({ subscription: SUB, ackIds: [first.b.ackId], ackDeadlineSeconds: 0 });
  const nacked = await pull(10, true);
  assert.deepEqual(nacked.map(text), ['b']);
  assert.equal(nacked[0].message.messageId, first.b.message.messageId);
  assert.notEqual(nacked[0].ackId, first.b.ackId);
  await subscriber.acknowledge({ subscription: SUB, ackIds: [nacked[0].ackId] });
  // extend c to 60 s (6 s here); a keeps the subscription's 10 s (1 s here)
  await subscriber.modifyAckDeadline({ subscription: SUB, ackIds: [first.c.ackId], ackDeadlineSeconds: 60 });
  assert.deepEqual(await pull(10, true), []);
  await sleep(1300);
  const again = await pull(10);
  assert.deepEqual(again.map(text), ['a']);
  assert.equal(again[0].message.messageId, first.a.message.messageId);
  await subscriber.acknowledge({ subscription: SUB, ackIds: [again[0].ackId, first.c.ackId] });
  assert.deepEqual(await pull(10, true), []);
  const st = (await control(ps.url, 'state')).subscriptions[SUB];
  assert.equal(st.backlog, 0);
  assert.equal(st.nacked, 1);
  assert.equal(st.expired, 1);
});

test('a GCS upload notification, pulled and decoded by the official client', T, async () => {
  const { token } = await auth.getAccessToken();
  const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const bucket = `conf-${tag}`;
  let r = await fetch(`${gcs.url}/storage/v1/b?project=${PROJECT}`, {
    method: 'POST', headers: h, body: JSON.stringify({ name: bucket }),
  });
  assert.equal(r.status, 200);
  r = await fetch(`${gcs.url}/storage/v1/b/${bucket}/notificationConfigs`, {
    method: 'POST', headers: h,
    body: JSON.stringify({ topic: `//pubsub.googleapis.com/${TOPIC}`, payload_format: 'JSON_API_V1' }),
  });
  assert.equal(r.status, 200);
  const cfg = await r.json();
  r = await fetch(`${gcs.url}/upload/storage/v1/b/${bucket}/o?uploadType=media&name=dir%2Fa.txt`, {
    method: 'POST', headers: { ...h, 'content-type': 'text/plain' }, body: 'payload',
  });
  assert.equal(r.status, 200);
  const obj = await r.json();
  const got = await pull(10);
  assert.equal(got.length, 1);
  const a = got[0].message.attributes;
  assert.deepEqual(
    { ...a, eventTime: undefined },
    {
      notificationConfig: `projects/_/buckets/${bucket}/notificationConfigs/${cfg.id}`,
      eventType: 'OBJECT_FINALIZE', payloadFormat: 'JSON_API_V1', bucketId: bucket,
      objectId: 'dir/a.txt', objectGeneration: obj.generation, eventTime: undefined,
    });
  assert.match(a.eventTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(JSON.parse(text(got[0])), obj);
  await subscriber.acknowledge({ subscription: SUB, ackIds: [got[0].ackId] });
});

test('delete, then 404s', T, async () => {
  await subscriber.deleteSubscription({ subscription: SUB });
  await assert.rejects(pull(1), isError('NOT_FOUND'));
  await publisher.deleteTopic({ topic: TOPIC });
  await assert.rejects(publisher.getTopic({ topic: TOPIC }), isError('NOT_FOUND'));
});

test('every request carried a checked token, over REST, and nothing left 127.0.0.1', T, async () => {
  const log = (await control(ps.url, 'log')).requests;
  assert.deepEqual(log.filter((e) => e.kind === 'unknown'), [], 'requests the server did not know');
  const unauth = log.filter((e) => e.auth !== 'bearer' || e.auth_ok !== true);
  assert.deepEqual(unauth, [], 'API requests without a valid Bearer token');
  // the client's own requests name the REST transport; the GCS server's publishes
  // (its notifications) come from Python
  const client = log.filter((e) => !/^Python-urllib/.test(e.user_agent || ''));
  assert.ok(client.length >= 15 && client.every((e) => /\brest\//.test(e.api_client || '')),
    'not the REST transport: ' + JSON.stringify(client.map((e) => e.api_client)));
  assert.ok(log.some((e) => e.kind === 'topics.publish' && /^Python-urllib/.test(e.user_agent)));
  const glog = (await control(gcs.url, 'log')).requests;
  assert.ok(glog.some((e) => e.kind === 'metadata' && e.status === 200), 'no metadata-server token');
  assert.ok(glog.some((e) => e.kind === 'tokeninfo' && e.status === 200), 'tokens never checked');
  assert.deepEqual(blocked, [], 'connections to somewhere other than 127.0.0.1');
  assert.ok(connects.length > 0 && connects.every((c) => LOCAL.has(c.host)));
});
