"""The change feed's test parts, shared: a Pub/Sub topic and subscription
for a GCS test bucket's notifications, and a mount's figures."""

import errno
import hashlib
import json
import os
import random
import statistics
import threading
import time

import pytest

PROJECT = "hylake-test"


@pytest.fixture
def feed(gcs, gcs_bucket, pubsub_server):
    """A topic and a subscription for the bucket's notifications (JSON_API_V1
    payloads, every event type).  Yields (client, subscription name)."""
    from pubsub_client import PubsubClient
    ps = PubsubClient(pubsub_server.url, project=PROJECT)
    topic, sub = f"t-{gcs_bucket}", f"s-{gcs_bucket}"
    ps.create_topic(topic)
    ps.create_subscription(sub, topic, ackDeadlineSeconds=10)
    gcs.client.request(
        "POST", f"/storage/v1/b/{gcs_bucket}/notificationConfigs",
        body=json.dumps({"topic": f"//pubsub.googleapis.com/projects/{PROJECT}/"
                                  f"topics/{topic}",
                         "payload_format": "JSON_API_V1"}).encode(),
        headers={"Content-Type": "application/json"}, ok=(200,))
    yield ps, f"projects/{PROJECT}/subscriptions/{sub}"
    ps.control.fail(count=0)


def figures(m):
    """The mount's Prometheus figures without labels: {name: value}."""
    text = os.getxattr(m.path, "user.hylake.metrics").decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


def wait_for(m, what, cond, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        f = figures(m)
        if cond(f):
            return f
        assert time.monotonic() < end, f"{what}: {f}"
        time.sleep(0.05)


class Churn:
    """Writers overwrite and delete a few names in GCS while readers on some
    mounts read them; then every read is judged against the states written.

        churn = Churn(gcs, bucket)        # the names' first states written
        churn.run(mounts, stall)          # stall: a generator that stalls the
                                          # feed, yields, and lets it go
        churn.judge(stale_max)            # asserts; prints the figures
    """

    NAMES = [f"c/n{i}" for i in range(8)]

    def __init__(self, gcs, bucket):
        self.gcs, self.bucket = gcs, bucket
        self.seed = int(os.environ.get("HYLAKE_SEED") or
                        random.SystemRandom().randrange(2**32))
        print(f"\nHYLAKE_SEED={self.seed}")
        self.rng = random.Random(self.seed)
        self.states = {n: [] for n in self.NAMES}   # name -> [(sha or None, t_done)]
        self.data = {}                               # sha -> bytes written
        self.lock = threading.Lock()
        self.results, self.stalled = [], []          # stalled: [t_from, t_to]
        asan = "asan" in os.environ.get("HYLAKE_BIN", "")     # tests/run's build-asan
        self.want_reads = 3000 if asan else 10_000
        for n in self.NAMES:
            self._write(self.rng, n)

    def _write(self, rng, n):
        """Overwrite n.  The state is recorded before the upload (done at
        infinity: readers may see it from the moment GCS has it, and an
        upload whose answer is lost may still have happened), and its time
        once the upload returned."""
        data = rng.randbytes(rng.randint(0, 48 * 1024))
        self.data[hashlib.sha256(data).hexdigest()] = data
        self._change(n, hashlib.sha256(data).hexdigest(),
                     lambda: self.gcs.client.upload(self.bucket, n, data))

    def _change(self, n, sha, do):
        with self.lock:
            self.states[n].append((sha, float("inf")))
            i = len(self.states[n]) - 1
        try:
            do()
        except Exception as e:       # noqa: BLE001  (its outcome is unknown)
            print(f"churn: {n}: {e!r}")
            return
        with self.lock:
            self.states[n][i] = (sha, time.monotonic())

    def _writer(self, stop):
        wr = random.Random(self.rng.random())
        while not stop.is_set():
            n = wr.choice(self.NAMES)
            with self.lock:
                live = self.states[n][-1][0] is not None
            if live and wr.random() < 0.15:
                self._change(n, None, lambda: self.gcs.client.delete(self.bucket, n))
            else:
                self._write(wr, n)
            time.sleep(wr.uniform(0.02, 0.08))

    def _reader(self, stop, m, k):
        from test_consistency import Reader
        rr, rd = random.Random(self.rng.random() + k), Reader()
        try:
            while not stop.is_set():
                n = rr.choice(self.NAMES)
                res = rd.read(m / n, timeout=20)
                res["name"] = n
                with self.lock:
                    self.results.append(res)
        finally:
            rd.close()

    def run(self, mounts, stall):
        """Half the reads, a stall of the feed (both mounts unhealthy) for two
        seconds, then the rest."""
        stop = threading.Event()
        threads = [threading.Thread(target=self._writer, args=(stop,), daemon=True)]
        threads += [threading.Thread(target=self._reader, args=(stop, m, k), daemon=True)
                    for m in mounts for k in range(2)]
        for t in threads:
            t.start()
        try:
            t0 = time.monotonic()
            while len(self.results) < self.want_reads // 2 and time.monotonic() - t0 < 40:
                time.sleep(0.2)
            resume = stall()
            next(resume)
            self.stalled.append(time.monotonic())
            time.sleep(2.0)
            self.stalled.append(time.monotonic())
            next(resume, None)
            t0 = time.monotonic()
            while len(self.results) < self.want_reads and time.monotonic() - t0 < 60:
                time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(30)

    def judge(self, stale_max):
        """Every read returned one state of its name; with the feed healthy at
        most stale_max behind GCS; none stale while it was stalled.  A read
        pinned to a generation GCS replaced just before (within stale_max) may
        be refused ESTALE, as in strict mode: counted, not an error."""
        wrong, errors, stale, strict_broken, refused = [], [], [], [], 0
        stalled = self.stalled
        for res in self.results:
            hist = self.states[res["name"]]
            if res.get("errno") == errno.ESTALE and any(
                    res["t_open"] - stale_max <= t <= res["t_done"] for _, t in hist):
                refused += 1
                continue
            if res["ok"]:
                match = [i for i, (sha, _) in enumerate(hist) if sha == res["sha256"]]
            elif res.get("errno") == errno.ENOENT:
                match = [i for i, (sha, _) in enumerate(hist) if sha is None]
            else:
                errors.append(res)
                continue
            if not match:
                wrong.append(res)
                continue
            floor = max((i for i, (_, t) in enumerate(hist) if t < res["t_open"]), default=0)
            got = max(match)
            if got < floor:
                behind = res["t_open"] - hist[got + 1][1]
                stale.append(behind)
                if stalled and stalled[0] + 0.5 < res["t_open"] < stalled[1]:
                    strict_broken.append((round(behind, 3), res["name"],
                                          res.get("source"), res.get("generation"),
                                          round(res["t_open"] - stalled[0], 3),
                                          round(res["t_done"] - res["t_open"], 3),
                                          round(stalled[1] - stalled[0], 3),
                                          [(round(t - stalled[0], 3), sha is None)
                                           for sha, t in hist[got:got + 3]]))
        st = sorted(stale)
        figures = (f"{len(self.results)} reads, "
                   f"{sum(len(h) for h in self.states.values())} states written; "
                   f"stale reads {len(st)}"
                   + (f" (median {statistics.median(st):.3f} s, max {st[-1]:.3f} s)"
                      if st else "")
                   + f"; refused ESTALE {refused}; errors {len(errors)}; wrong {len(wrong)}")
        print(figures)
        elsewhere = {}
        for r in wrong[:3]:
            # another name's state, or a part (a prefix) of one of this name's
            elsewhere[r["sha256"][:12]] = (
                [(n, i) for n, h in self.states.items()
                 for i, (sha, _) in enumerate(h) if sha == r["sha256"]],
                [(i, len(self.data[sha])) for i, (sha, _) in enumerate(self.states[r["name"]])
                 if sha and hashlib.sha256(self.data[sha][:r["size"]]).hexdigest()
                 == r["sha256"]])
        assert not wrong, (f"reads of bytes no state of the name had: {wrong[:3]}; "
                           f"states of other names with those bytes: {elsewhere}; "
                           f"the name's states: {[len(self.states[r['name']]) for r in wrong[:1]]}"
                           f"\n{figures}")
        assert not errors, f"failed reads: {errors[:3]}\n{figures}"
        assert len(self.results) >= self.want_reads, figures
        assert not strict_broken, f"stale reads while the feed was stalled: {strict_broken[:5]}"
        assert not st or st[-1] <= stale_max, f"a read too far behind GCS\n{figures}"
        return figures
