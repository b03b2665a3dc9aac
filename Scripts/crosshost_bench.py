"""Scripts/bench --parts crosshost: moves between levels on two hosts (Scripts/hosts.py), beside a raw
copy and rsync's daemon between the same network namespaces, in the same run.

Host h1 holds bronze, h2 gold (each a tmpfs in its own mount namespace); Redis and PostgreSQL listen
on the bridge of the root namespace, the committer runs there. Per run:

  big        --crosshost-mib files (default 3 × 256 MiB) in bronze pulled into gold by h2's worker,
             from the counts until every row is committed; beside a raw single-stream copy (Python's
             os.sendfile to a socket on h1, recv into a file and fsync on h2, one file after the
             other) and `rsync --whole-file --remove-source-files` from an rsync daemon on h1.
  small      --crosshost-files files of 4 KiB (default 5,000) the same way, files/s, beside the
             same rsync.
  resume     a file of 6 chunks and a bit pulled through the fault proxy, h1's link limited to
             100 MB/s, its puller (then, in a second file, its source side) killed with SIGKILL at a
             random offset and restarted: the bytes the proxy carried beyond the file's size (HTTP
             headers included) are the bytes sent again for that interrupted file.
  bandwidth  gold's bandwidth setting (`levels set gold --bandwidth`) at 10, 50 and 200 MB/s, published
             to the workers, a file of 10 s at that rate (at most 1 GiB) pulled: the transfer's average
             rate, from its first chunk recorded verified to its last (the job's `verified`), beside the
             setting; the log line also gives the rate from the count to the worker's ack.
  tls        (with --tls) the big files pulled again with both workers speaking TLS
             (--transfer-tls-cert/-key/-ca; a CA and a certificate naming both hosts' data addresses
             made by openssl), beside the plain pull of the same run: what TLS costs.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Postgres, Redis, Resp  # noqa: E402
from hosts import Hosts  # noqa: E402

CHUNK = 8 << 20
MB = 1_000_000

RECEIVER = """
import os, socket, sys, time
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2]))); server.listen(1)
print("ready", flush=True)
total, elapsed = 0, 0.0
for path in sys.argv[3:]:
    connection, _ = server.accept()
    start = time.perf_counter()
    with open(path, "wb") as f:
        buffer = bytearray(1 << 20)
        while True:
            n = connection.recv_into(buffer)
            if not n:
                break
            f.write(memoryview(buffer)[:n])
            total += n
        f.flush(); os.fsync(f.fileno())
    connection.close()
    elapsed += time.perf_counter() - start
print(total, elapsed, flush=True)
"""

SENDER = """
import os, socket, sys, time
for path in sys.argv[3:]:
    while True:
        try:
            s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
            break
        except ConnectionRefusedError:
            time.sleep(0.01)
    with open(path, "rb") as f:
        size, sent = os.fstat(f.fileno()).st_size, 0
        while sent < size:
            sent += os.sendfile(s.fileno(), f.fileno(), sent, size - sent)
    s.close()
"""


def log(message):
    print(f"bench [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def until(condition, what, timeout, interval=0.01):
    deadline = time.perf_counter() + timeout
    while True:
        if condition():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class CrossHostBench:
    def __init__(self, bench):
        self.bench = bench
        self.args = bench.args
        self.binary = bench.binary
        self.work = tempfile.mkdtemp(prefix="relocator-xhbench.")
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs)
        self.hosts = self.redis = self.pg = self.committer = self.resp = None
        self.cid = 0
        self.rng = random.Random(1)

    # ------------------------------------------------------------ plumbing

    def environment(self):
        env = dict(os.environ)
        env.update({"REDIS_URL": self.redis.url, "DATABASE_URL": self.pg.url, "RELOCATOR_LEVELS": self.hosts.levels_setting(),
                    "RELOCATOR_PREFIX": "{xb}", "RELOCATOR_LOG_LEVEL": "notice", "RELOCATOR_HEARTBEAT_TTL_MS": "2000"})
        return env

    def relocator(self, *arguments, stdin=None):
        result = subprocess.run([self.binary, *arguments], env=self.environment(), cwd=self.work, capture_output=True,
                                text=True, input=stdin)
        if result.returncode != 0:
            raise RuntimeError(f"relocator {' '.join(arguments)}: {result.stderr.strip()}")
        return result

    def statuses(self, cids):
        script = "\n".join(f"HGET {{xb}}job:{cid} status" for cid in cids)
        out = subprocess.run(["redis-cli", "-p", str(self.redis.port), "--raw"], input=script + "\n", capture_output=True,
                             text=True, check=True).stdout
        return out.split("\n")[:len(cids)]

    def job(self, cid):
        fields = self.redis.cli("HGETALL", f"{{xb}}job:{cid}").splitlines()
        return dict(zip(fields[0::2], fields[1::2]))

    def all_in(self, cids, states):
        """Every job of `cids` is in one of `states` (a committed job may also be gone)."""
        for start in range(0, len(cids), 1000):
            if not all(s in states for s in self.statuses(cids[start:start + 1000])):
                return False
        return True

    def worker(self, host, proxy=False, concurrency=None, tls=False):
        name = f"worker-{host.name}"
        concurrency = concurrency or self.args.crosshost_concurrency
        options = []
        if tls:
            d = self.tls_files()
            options = ["--transfer-tls-cert", os.path.join(d, "host.pem"), "--transfer-tls-key", os.path.join(d, "host-key.pem"),
                       "--transfer-tls-ca", os.path.join(d, "ca.pem")]
        host.start(name, [self.binary, "worker", "--id", host.name, "--concurrency", str(concurrency), "--metrics-port", "0",
                          "--transfer-listen", host.transfer_listen, "--transfer-advertise",
                          host.proxy.address if proxy else host.transfer_listen] + options, self.environment(), self.logs)
        advertised = host.proxy.address if proxy else host.transfer_listen
        until(lambda: self.redis.cli("HGET", f"{{xb}}worker:{host.name}", "transfer").strip() == advertised,
              f"{host.name}'s advertisement", 60)

    def restart_workers(self, proxy=False, concurrency=None, tls=False):
        for host in self.hosts:
            host.kill(f"worker-{host.name}", signal.SIGTERM)
        for host in self.hosts:
            self.worker(host, proxy=proxy and host.index == 1, concurrency=concurrency, tls=tls)
        if tls:
            until(lambda: all(self.redis.cli("HGET", f"{{xb}}worker:{h.name}", "transfer_tls").strip() == "1" for h in self.hosts),
                  "the TLS advertisements", 60)

    def tls_files(self):
        """A CA and one certificate naming both hosts' data addresses (openssl), in the run's directory."""
        d = os.path.join(self.work, "tls")
        if os.path.isdir(d):
            return d
        os.makedirs(d, mode=0o700)

        def openssl(*arguments):
            subprocess.run(["openssl", *arguments], cwd=d, check=True, capture_output=True)

        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        openssl("req", "-x509", *key, "-days", "2", "-subj", "/CN=relocator bench CA", "-keyout", "ca-key.pem", "-out", "ca.pem")
        with open(os.path.join(d, "host.ext"), "w") as f:
            names = ",".join(f"IP:{host.data_address}" for host in self.hosts)
            f.write(f"subjectAltName={names}\nextendedKeyUsage=serverAuth\n")
        openssl("req", *key, "-subj", "/CN=relocator bench host", "-keyout", "host-key.pem", "-out", "host.csr")
        openssl("x509", "-req", "-in", "host.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
                "-extfile", "host.ext", "-out", "host.pem")
        return d

    def write(self, host, level, name, size):
        path = os.path.join(host.level_outside(level), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        block = os.urandom(1 << 20)
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
        return path

    def contents(self, names):
        """New contents in bronze; returns their cids."""
        cids = list(range(self.cid + 1, self.cid + 1 + len(names)))
        self.cid += len(names)
        self.relocator("contents", "import", "-", stdin="".join(f"{cid},{name},bronze\n" for cid, name in zip(cids, names)))
        return cids

    def committed(self):
        return int(self.resp.call("HGET", "{xb}stats", "committed") or 0)

    def move(self, cids, states=("committed",), timeout=900):
        """Counts for gold; seconds until every job is in `states` (committed: the committer's count)."""
        counts = "".join(f"{cid},50000\n" for cid in cids)
        before = self.committed()
        start = time.perf_counter()
        self.relocator("enqueue", "--file", "-", stdin=counts)
        if states == ("committed",):
            end = until(lambda: self.committed() >= before + len(cids), f"{len(cids)} commits", timeout, 0.01)
            if not self.all_in(cids, states):
                raise RuntimeError("the committer's count grew, but not every job is committed")
        else:
            end = until(lambda: self.all_in(cids, states), f"{len(cids)} moves", timeout, 0.01)
        return end - start

    def rsync(self, directory):
        """rsync --whole-file --remove-source-files of bronze/<directory>/ into gold/<directory>/ from h1's daemon;
        seconds."""
        h1, h2 = self.hosts[0], self.hosts[1]
        target = os.path.join(h2.level_path("gold"), directory) + "/"
        start = time.perf_counter()
        h2.run(["rsync", "-a", "--whole-file", "--remove-source-files", f"rsync://{h1.data_address}:8730/bronze/{directory}/",
                target])
        return time.perf_counter() - start

    def raw(self, paths_h1, names_h2):
        h1, h2 = self.hosts[0], self.hosts[1]
        receiver = subprocess.Popen(h2.enter() + ["python3", "-c", RECEIVER, h2.data_address, "9100", *names_h2],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert receiver.stdout.readline().strip() == "ready", receiver.stderr.read()
            h1.run(["python3", "-c", SENDER, h2.data_address, "9100", *paths_h1])
            total, elapsed = receiver.stdout.readline().split()
            receiver.wait(60)
        finally:
            if receiver.poll() is None:
                receiver.kill()
                receiver.wait()
        return int(total), float(elapsed)

    def command_calls(self):
        """Calls of each Redis command so far (INFO commandstats: a script's EVALSHA and every command it
        ran each count)."""
        calls = {}
        for line in self.redis.cli("INFO", "commandstats").splitlines():
            name, _, rest = line.partition(":calls=")
            if name.startswith("cmdstat_") and rest:
                calls[name[len("cmdstat_"):]] = int(rest.split(",")[0])
        return calls

    def cpu(self):
        """CPU seconds (user + system) used so far by each host's worker, the committer and Redis."""
        def seconds(pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (FileNotFoundError, ProcessLookupError):
                return 0.0
        used = {f"worker-{host.name}": seconds(host.processes[f"worker-{host.name}"].pid) for host in self.hosts
                if f"worker-{host.name}" in host.processes}
        used["committer"] = seconds(self.committer.pid)
        used["redis"] = seconds(self.redis.process.pid)
        return used

    # ------------------------------------------------------------ parts

    def setup(self):
        mib = self.args.crosshost_mib
        room = max(2 * mib[0] * mib[1] + 1024, 1300 + self.args.crosshost_files * 8 // 1024 + 512)
        self.hosts = Hosts(self.work, [{"bronze": room}, {"gold": room}])
        self.redis = Redis(os.path.join(self.work, "redis"), bind=self.hosts.mgmt_gateway)
        self.redis.start()
        # Polls on one connection: a redis-cli started 100 times a second would take CPU from the run.
        self.resp = Resp(self.redis.port)
        self.pg = Postgres(fsync=True, listen=self.hosts.mgmt_gateway)
        self.pg.start()
        self.relocator("migrate")
        self.relocator("levels", "--seed-default")
        self.hosts[0].add_proxy()
        self.committer = subprocess.Popen([self.binary, "committer", "--id", "c1", "--metrics-port", "0", "--batch", "500",
                                           "--rebalance-interval", "off"], env=self.environment(), cwd=self.work,
                                          stdin=subprocess.DEVNULL, stdout=open(os.path.join(self.logs, "committer.out"), "ab"),
                                          stderr=open(os.path.join(self.logs, "committer.err"), "ab"))
        self.hosts.remember(self.committer.pid)
        # rsync's daemon on h1, serving bronze (writable: --remove-source-files removes there).
        h1 = self.hosts[0]
        config = os.path.join(self.work, "rsyncd.conf")
        with open(config, "w") as f:
            f.write(f"use chroot = no\nuid = root\ngid = root\n[bronze]\npath = {h1.level_path('bronze')}\nread only = no\n")
        h1.start("rsyncd", ["rsync", "--daemon", "--no-detach", f"--config={config}", f"--address={h1.data_address}",
                            "--port=8730"], self.environment(), self.logs)
        until(lambda: self.hosts[1].run(["rsync", f"rsync://{h1.data_address}:8730/"], check=False).returncode == 0,
              "rsync's daemon", 30, 0.1)
        self.restart_workers()

    def big(self, run):
        count, mib = self.args.crosshost_mib
        size = mib << 20
        h1, h2 = self.hosts[0], self.hosts[1]
        title = f"Cross-host: {count} × {mib} MiB pulled, counts → committed"
        vs_raw = self.bench.figure("crosshost.big_vs_raw", title, "MB/s", "raw sendfile, one stream", "≥ 0.75 × raw",
                                   lambda m, r: r is not None and r >= 0.75, ratio_of="relocator/raw", digits=0)
        vs_rsync = self.bench.figure("crosshost.big_vs_rsync", title, "MB/s", "rsync daemon --whole-file", "≥ 1.3 × rsync",
                                     lambda m, r: r is not None and r >= 1.3, ratio_of="relocator/rsync", digits=0)
        # Raw: sendfile from h1, one file after the other.
        paths = [self.write(h1, "bronze", f"raw{run}/f{i}", size) for i in range(count)]
        total, elapsed = self.raw([os.path.join(h1.level_path("bronze"), f"raw{run}/f{i}") for i in range(count)],
                                  [os.path.join(h2.level_path("gold"), f"raw{run}-f{i}") for i in range(count)])
        if total != count * size:
            raise RuntimeError(f"the raw copy moved {total} bytes, not {count * size}")
        raw_rate = total / elapsed / MB
        for p in paths:
            os.unlink(p)
        for i in range(count):
            os.unlink(os.path.join(h2.level_outside("gold"), f"raw{run}-f{i}"))
        # rsync daemon.
        for i in range(count):
            self.write(h1, "bronze", f"rs{run}/f{i}", size)
        rsync_rate = count * size / self.rsync(f"rs{run}") / MB
        shutil.rmtree(os.path.join(h2.level_outside("gold"), f"rs{run}"))
        # Relocator.
        before = self.cpu()
        ours = self.pull_big([f"big{run}/f{i}" for i in range(count)], size)
        after = self.cpu()
        vs_raw.add(ours, raw_rate)
        vs_rsync.add(ours, rsync_rate)
        # CPU per GiB pulled, which a loaded machine disturbs less than the rate.
        per_gib = {name: (after[name] - before.get(name, 0.0)) * (1 << 30) / (count * size) for name in after}
        log(f"crosshost big run {run + 1}: relocator {ours:.0f} MB/s, raw sendfile {raw_rate:.0f} MB/s, rsync daemon {rsync_rate:.0f} MB/s; "
            f"CPU s per GiB: " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in sorted(per_gib.items())))
        if self.args.tls:
            self.big_tls(run, ours)

    def pull_big(self, names, size):
        """Writes `names` of `size` bytes on the first host's bronze, pulls them all to the second's
        gold, checks each moved whole and removes it there; the pull's rate in MB/s."""
        h1, h2 = self.hosts[0], self.hosts[1]
        for name in names:
            self.write(h1, "bronze", name, size)
        rate = len(names) * size / self.move(self.contents(names)) / MB
        for name in names:
            if os.path.exists(os.path.join(h1.level_outside("bronze"), name)) or \
                    os.path.getsize(os.path.join(h2.level_outside("gold"), name)) != size:
                raise RuntimeError(f"{name} was not moved")
            os.unlink(os.path.join(h2.level_outside("gold"), name))
        return rate

    def big_tls(self, run, plain):
        """The same pull between workers that speak TLS, beside the plain pull of this run."""
        count, mib = self.args.crosshost_mib
        size = mib << 20
        h1, h2 = self.hosts[0], self.hosts[1]
        figure = self.bench.figure("crosshost.big_tls", f"Cross-host: {count} × {mib} MiB pulled over TLS, counts → committed",
                                   "MB/s", "the plain pull", "≥ 0.5 × plain", lambda m, r: r is not None and r >= 0.5,
                                   ratio_of="tls/plain", digits=0)
        self.restart_workers(tls=True)
        try:
            # One small pull first, untimed: the fresh workers' first connection and handshake (the
            # plain pull's workers are warm by the time it is timed).
            self.write(h1, "bronze", f"tls{run}/warm", 1 << 20)
            self.move(self.contents([f"tls{run}/warm"]))
            os.unlink(os.path.join(h2.level_outside("gold"), f"tls{run}/warm"))
            ours = self.pull_big([f"tls{run}/f{i}" for i in range(count)], size)
        finally:
            self.restart_workers()
        figure.add(ours, plain)
        log(f"crosshost big over TLS run {run + 1}: {ours:.0f} MB/s, plain {plain:.0f} MB/s")

    def small(self, run):
        files = self.args.crosshost_files
        h1, h2 = self.hosts[0], self.hosts[1]
        figure = self.bench.figure("crosshost.small", f"Cross-host: {files:,} × 4 KiB pulled, counts → committed", "files/s",
                                   "rsync daemon --whole-file", "≥ 1 × rsync", lambda m, r: r is not None and r >= 1.0,
                                   ratio_of="relocator/rsync", digits=0)
        block = os.urandom(4096)

        def make(directory):
            base = os.path.join(h1.level_outside("bronze"), directory)
            os.makedirs(base)
            for i in range(files):
                with open(os.path.join(base, f"f{i}"), "wb") as f:
                    f.write(block)
        make(f"rsmall{run}")
        rsync_rate = files / self.rsync(f"rsmall{run}")
        shutil.rmtree(os.path.join(h2.level_outside("gold"), f"rsmall{run}"))
        make(f"small{run}")
        names = [f"small{run}/f{i}" for i in range(files)]
        cids = self.contents(names)
        # Where the time goes: Redis commands and CPU per file over the move.
        calls, cpu, polls = self.command_calls(), self.cpu(), self.resp.calls
        ours = files / self.move(cids, timeout=1800)
        calls_after, cpu_after, polled = self.command_calls(), self.cpu(), self.resp.calls - polls
        per_file = {name: (calls_after.get(name, 0) - calls.get(name, 0)) / files for name in calls_after}
        # (This script's own polls of the count left out.)
        per_file["hget"] = per_file.get("hget", 0) - polled / files
        busiest = ", ".join(f"{name} {n:.2f}" for name, n in sorted(per_file.items(), key=lambda kv: -kv[1])[:8] if n >= 0.01)
        log(f"crosshost small run {run + 1}: Redis commands per file {sum(per_file.values()):.1f} ({busiest}); CPU ms per file "
            + ", ".join(f"{name} {(cpu_after[name] - cpu[name]) * 1000 / files:.2f}" for name in cpu))
        left = os.listdir(os.path.join(h1.level_outside("bronze"), f"small{run}"))
        moved = len(os.listdir(os.path.join(h2.level_outside("gold"), f"small{run}")))
        if left or moved != files:
            raise RuntimeError(f"small files: {len(left)} left in bronze, {moved} in gold")
        shutil.rmtree(os.path.join(h2.level_outside("gold"), f"small{run}"))
        figure.add(ours, rsync_rate)
        log(f"crosshost small run {run + 1}: relocator {ours:.0f} files/s, rsync daemon {rsync_rate:.0f} files/s")

    def resume(self, run):
        h1, h2 = self.hosts[0], self.hosts[1]
        size = 6 * CHUNK + 12345
        figures = {side: self.bench.figure(f"crosshost.resume_{side}",
                                           f"Cross-host resume, kill -9 of the {'puller' if side == 'puller' else 'source side'} "
                                           f"at a random offset: bytes sent again per interrupted file", "MiB",
                                           target="≤ 8 MiB (one chunk)", check=lambda m, r: m <= 8, digits=2)
                   for side in ("puller", "source")}
        h1.limit(100)
        self.restart_workers(proxy=True, concurrency=1)
        try:
            for side in ("puller", "source"):
                name = f"resume{run}-{side}"
                self.write(h1, "bronze", name, size)
                (cid,) = self.contents([name])
                before = h1.proxy.counters()["down"]
                offset = self.rng.uniform(0.1, 0.9) * size
                self.relocator("enqueue", "--cid", str(cid), "--count", "50000")
                until(lambda: h1.proxy.counters()["down"] - before >= offset, "the random offset", 120, 0.002)
                victim = h2 if side == "puller" else h1
                victim.kill(f"worker-{victim.name}")
                at_kill = h1.proxy.counters()["down"] - before
                self.worker(victim, proxy=victim is h1, concurrency=1)
                until(lambda: self.all_in([cid], ("committed",)), "the resumed move", 300, 0.05)
                again = max(0, h1.proxy.counters()["down"] - before - size)
                figures[side].add(again / 2**20)
                log(f"crosshost resume run {run + 1}: {side} killed after {at_kill / 2**20:.1f} MiB through the proxy, "
                    f"{again / 2**20:.2f} MiB sent again")
                os.unlink(os.path.join(h2.level_outside("gold"), name))
        finally:
            h1.limit(None)
            self.restart_workers()

    def bandwidth(self, run):
        h1, h2 = self.hosts[0], self.hosts[1]
        for rate in (10, 50, 200):
            figure = self.bench.figure(f"crosshost.bandwidth_{rate}", f"Cross-host pull, gold --bandwidth {rate}MB: average rate",
                                       "MB/s", "the setting", f"{rate} ± 5 %", lambda m, r: r is not None and 0.95 <= r <= 1.05,
                                       ratio_of="achieved/setting", digits=1)
            self.relocator("levels", "set", "gold", "--bandwidth", f"{rate}MB")
            self.publish_policies(lambda policies: (policies.get("gold") or {}).get("bandwidth") == rate * MB)
            size = min(rate * MB * 10, 1 << 30)
            name = f"bw{run}-{rate}"
            self.write(h1, "bronze", name, size)
            (cid,) = self.contents([name])
            # The job's verified bytes as the pull records them, chunk by chunk, while it moves.
            samples, done = [], threading.Event()

            def watch():
                while not done.is_set():
                    text = self.redis.cli("HGET", f"{{xb}}job:{cid}", "verified").strip()
                    if text.isdigit():
                        samples.append((time.perf_counter(), int(text)))
                    time.sleep(0.02)
            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                seconds = self.move([cid], states=("done", "committing", "committed"), timeout=600)
            finally:
                done.set()
                watcher.join()
            overall = size / seconds / MB
            # The transfer's own average: from the first chunk recorded to the last (the whole file's
            # read-back and the source's removal, which send nothing, after it).
            moving = [s for s in samples if s[1] > 0]
            first = moving[0] if moving else None
            last = next((s for s in moving if s[1] >= size), moving[-1] if moving else None)
            if first is None or last[0] <= first[0]:
                raise RuntimeError(f"the pull of {name} recorded too few chunks to time it")
            achieved = (last[1] - first[1]) / (last[0] - first[0]) / MB
            figure.add(achieved, rate)
            log(f"crosshost bandwidth run {run + 1}: setting {rate} MB/s, {size / MB:.0f} MB pulled at {achieved:.1f} MB/s "
                f"from its first chunk recorded to its last ({overall:.1f} MB/s from the count to the ack)")
            until(lambda: self.all_in([cid], ("committed",)), "the commit", 120)
            os.unlink(os.path.join(h2.level_outside("gold"), name))
        self.relocator("levels", "set", "gold", "--bandwidth", "none")
        self.publish_policies(lambda policies: (policies.get("gold") or {}).get("bandwidth") is None)

    def publish_policies(self, published):
        """Workers pace by the level table as the rebalancer publishes it (`placement`), and this run's
        committer rebalances nothing: a second committer, rebalancing every second, publishes it until
        `published(policies)` holds; then the workers' next maintenance round (a third of their
        heartbeat's 2 s) reads it."""
        def policies():
            text = self.redis.cli("GET", "{xb}placement").strip()
            return json.loads(text).get("policies", {}) if text else {}
        publisher = subprocess.Popen([self.binary, "committer", "--id", "c-publish", "--metrics-port", "0", "--rebalance-interval", "1s"],
                                     env=self.environment(), cwd=self.work, stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.logs, "publisher.out"), "ab"),
                                     stderr=open(os.path.join(self.logs, "publisher.err"), "ab"))
        self.hosts.remember(publisher.pid)
        try:
            until(lambda: published(policies()), "the level table's publication", 60, 0.1)
        finally:
            publisher.terminate()
            try:
                publisher.wait(15)
            except subprocess.TimeoutExpired:
                publisher.kill()
                publisher.wait()
        time.sleep(1.5)

    def main(self):
        self.setup()
        figures = self.args.crosshost_figures.split(",")
        for run in range(self.args.runs):
            for figure in ("big", "small", "resume", "bandwidth"):
                if figure in figures:
                    getattr(self, figure)(run)

    def cleanup(self):
        if self.committer and self.committer.poll() is None:
            self.committer.terminate()
            try:
                self.committer.wait(15)
            except subprocess.TimeoutExpired:
                self.committer.kill()
        if self.hosts:
            self.hosts.close()
        if self.resp:
            self.resp.close()
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.remove()
        shutil.rmtree(self.work, ignore_errors=True)


def run(bench):
    part = CrossHostBench(bench)
    try:
        part.main()
    finally:
        part.cleanup()
