"""The cross-host chaos run: `Scripts/chaos --hosts 2|3 [--short] [--seed N] [--keep] [--faults N]`.

Levels on separate hosts (Scripts/hosts.py): with 2 hosts, bronze and silver on h1 and gold on h2;
with 3, one level each. Every host runs one worker in its own network and mount namespaces,
listening for transfers on its data link and advertising a fault proxy in front of it; a committer,
Redis and PostgreSQL run in the root namespace. Contents of a few bytes to tens of MiB (several
8 MiB chunks) get counts that move them between the levels, mostly across hosts, one count at a
time per content, while seeded faults are drawn one after another:

  kill       kill -9 of a host's worker (the puller's or the source's side) at a random moment,
             restarted under its id after a short while
  partition  the data link of a host down for 0.5–60 s (--short: 0.5–6 s), then up
  flip       the proxy flips a byte in the next 1–3 chunks of answers
  reset      the proxy resets every connection it carries
  stall      the proxy holds every connection for 1–12 s
  full       the target level's disk filled to the last few KiB for 2–6 s, then freed
  change     a source whose pull is under way gets bytes appended

During each partition it checks, every poll, that no source of a move across the cut link is
removed and no such move is marked done; after the link is back, that every such move that was
in flight shows progress (bytes through the proxy, `verified`, its status) within 5 s. At the end,
once the queue drained: every content is present exactly once, at the level its last count chose
and the database records, holding a version it had (0 lost, 0 doubled, 0 corrupted); no dead
letter; every level's `.relocator/tmp/` is empty (partial files swept). One line per failed check,
with the cid and what was seen; then "N passed, M failed".
"""

import argparse
import hashlib
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
from harness import ROOT, Postgres, Redis  # noqa: E402
from hosts import Hosts  # noqa: E402

LEVEL_FOR = [(10000, "gold"), (1000, "silver"), (0, "bronze")]
COUNTS = {"bronze": (0, 999), "silver": (1000, 9999), "gold": (10000, 99999)}
PREFIX = "{xh}"
RESUME_WITHIN = 5.0
FAULTS = ["kill", "partition", "flip", "reset", "stall", "full", "change"]


def log(message):
    print(f"chaos [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def poll(condition, timeout, interval=0.1):
    deadline = time.time() + timeout
    while True:
        try:
            if condition():
                return True
        except Exception:
            pass
        if time.time() >= deadline:
            return False
        time.sleep(interval)


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Resp:
    """A small Redis client of its own (one connection per thread, pipelined HGETALLs)."""

    def __init__(self, port):
        self.port = port
        self.local = threading.local()

    def connection(self):
        if getattr(self.local, "socket", None) is None:
            self.local.socket = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.local.reader = self.local.socket.makefile("rb")
        return self.local.socket, self.local.reader

    def _read(self, reader):
        line = reader.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else reader.read(n + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read(reader) for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def pipeline(self, commands):
        sock, reader = self.connection()
        out = []
        for command in commands:
            out.append(f"*{len(command)}\r\n".encode())
            for argument in command:
                data = str(argument).encode()
                out.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
        try:
            sock.sendall(b"".join(out))
            return [self._read(reader) for _ in commands]
        except (OSError, RuntimeError):
            self.local.socket = None
            raise


class CrossHostRun:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = tempfile.mkdtemp(prefix="relocator-xh.")
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs)
        self.bin = os.environ.get("RELOCATOR_BIN") or os.path.join(ROOT, ".build", "debug", "relocator")
        self.hosts = self.redis = self.pg = None
        self.committer = None
        self.lock = threading.Lock()
        self.failures = []        # (check, cid or "-", what was seen)
        self.passes = 0
        self.stats = {fault: 0 for fault in FAULTS}
        self.stop = threading.Event()
        self.partitioned = None   # the host whose data link is down, while it is
        self.worker_lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing

    def fail(self, check, cid, seen):
        log(f"FAILED {check} cid={cid}: {seen}")
        with self.lock:
            self.failures.append((check, cid, seen))

    def ok(self):
        with self.lock:
            self.passes += 1

    def environment(self):
        env = dict(os.environ)
        env.update({
            "REDIS_URL": self.redis.url, "DATABASE_URL": self.pg.url, "RELOCATOR_LEVELS": self.hosts.levels_setting(),
            "RELOCATOR_PREFIX": PREFIX, "RELOCATOR_HEARTBEAT_TTL_MS": "2000", "RELOCATOR_RETRY_BASE_MS": "200",
            "RELOCATOR_RETRY_CAP_MS": "2000", "RELOCATOR_MAX_ATTEMPTS": "60", "RELOCATOR_LOG_LEVEL": "info",
        })
        return env

    def relocator(self, *arguments, check=True, stdin=None):
        result = subprocess.run([self.bin, *arguments], env=self.environment(), cwd=self.work, capture_output=True,
                                text=True, input=stdin, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"relocator {' '.join(arguments)}: {result.stderr.strip()}")
        return result

    def rcli(self, *arguments):
        return self.redis.cli(*arguments)

    @staticmethod
    def brief(job):
        keys = ("status", "db_level", "target", "stage", "bytes_done", "bytes_total", "verified", "defer_reason", "due_at",
                "attempts", "last_error")
        return {k: job[k] for k in keys if job.get(k)}

    @staticmethod
    def due(job):
        return f", due {int(job['due_at']) / 1000 - time.time():.1f} s from now" if job.get("due_at") else ""

    def job(self, cid):
        return self.jobs([cid])[cid]

    def jobs(self, cids=None):
        """cid → its job's fields, in one round trip."""
        cids = list(self.filenames if cids is None else cids)
        replies = self.resp.pipeline([("HGETALL", f"{PREFIX}job:{cid}") for cid in cids])
        return {cid: dict(zip(fields[0::2], fields[1::2])) for cid, fields in zip(cids, replies)}

    def start_worker(self, host):
        with self.worker_lock:
            name = f"worker-{host.name}"
            host.start(name, [self.bin, "worker", "--id", host.name, "--concurrency", "2", "--metrics-port", "0",
                              "--transfer-listen", host.transfer_listen, "--transfer-advertise", host.transfer_advertise],
                       self.environment(), self.logs)

    def advertised(self, host):
        return self.rcli("HGET", f"{PREFIX}worker:{host.name}", "transfer").strip() == host.transfer_advertise

    def level_host(self, level):
        return self.hosts.holding(level)

    def copies(self, cid):
        """(level, path outside) of every copy of the content's file."""
        found = []
        for host in self.hosts:
            for level in host.levels:
                path = os.path.join(host.level_outside(level), self.filenames[cid])
                if os.path.isfile(path):
                    found.append((level, path))
        return found

    def temporaries(self):
        found = []
        for host in self.hosts:
            for level in host.levels:
                tmp = os.path.join(host.level_outside(level), ".relocator", "tmp")
                if os.path.isdir(tmp):
                    found += [f"{host.name}:{level}/.relocator/tmp/{name}" for name in os.listdir(tmp)]
        return found

    def idle(self):
        status = json.loads(self.relocator("status", "--json").stdout)
        return sum(status["queues"].values()) + status["processing"] + status["retry"] + status.get("deferred", 0) \
            + status["done"] + status["committing"] == 0

    # --------------------------------------------------------------------- setup

    def setup(self):
        n = self.args.hosts
        gold_mib = self.args.gold_mib
        layout = [{"bronze": 1024, "silver": 1024}, {"gold": gold_mib}] if n == 2 else \
            [{"bronze": 1024}, {"silver": 1024}, {"gold": gold_mib}]
        self.hosts = Hosts(self.work, layout)
        log(f"data links limited to {self.args.rate} MB/s each way; hosts {', '.join(f'{h.name} ({h.namespace}: {sorted(h.levels)})' for h in self.hosts)}")
        self.redis = Redis(os.path.join(self.work, "redis"), bind=self.hosts.mgmt_gateway)
        self.redis.start()
        self.resp = Resp(self.redis.port)
        self.pg = Postgres(fsync=False, listen=self.hosts.mgmt_gateway)
        self.pg.start()
        self.relocator("migrate")
        self.relocator("levels", "--seed-default")
        for host in self.hosts:
            host.add_proxy()
            host.limit(self.args.rate)
        # Contents: mostly small, a share of several chunks; all start in bronze (h1).
        self.filenames, self.versions, self.expected, self.sizes = {}, {}, {}, {}
        bronze = self.hosts.holding("bronze")
        csv = []
        for cid in range(1, self.args.contents + 1):
            roll = self.rng.random()
            if roll < 0.55:
                size = self.rng.randint(0, 256 * 1024)
            elif roll < 0.75:
                size = self.rng.randint(256 * 1024, 6 * 1024 * 1024)
            else:
                size = self.rng.randint(9 * 1024 * 1024, self.args.max_mib * 1024 * 1024)
            name = f"d{cid % 4}/c{cid:04d}.bin"
            path = os.path.join(bronze.level_outside("bronze"), name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            seed = self.rng.getrandbits(64).to_bytes(8, "little")
            block = hashlib.sha256(seed).digest() * 4096   # 128 KiB, distinct per content
            with open(path, "wb") as f:
                left = size
                while left:
                    f.write(block[:min(left, len(block))])
                    left -= min(left, len(block))
            self.filenames[cid], self.sizes[cid], self.expected[cid] = name, size, "bronze"
            self.versions[cid] = {digest(path)}
            csv.append(f"{cid},{name},bronze")
        self.relocator("contents", "import", "-", stdin="\n".join(csv) + "\n")
        self.committer = subprocess.Popen([self.bin, "committer", "--id", "committer", "--metrics-port", "0"],
                                          env=self.environment(), cwd=self.work, stdin=subprocess.DEVNULL,
                                          stdout=open(os.path.join(self.logs, "committer.out"), "ab"),
                                          stderr=open(os.path.join(self.logs, "committer.err"), "ab"))
        self.hosts.remember(self.committer.pid)
        for host in self.hosts:
            self.start_worker(host)
        for host in self.hosts:
            if not poll(lambda host=host: self.advertised(host), 60):
                raise RuntimeError(f"{host.name}'s worker did not advertise its transfer address "
                                   f"({open(os.path.join(self.logs, f'worker-{host.name}.err')).read()[-800:]})")
        log(f"{len(self.filenames)} contents, {sum(self.sizes.values()) / 2**20:.0f} MiB, in bronze on {bronze.name}")

    # ------------------------------------------------------------------ workload

    def counts(self):
        """Counts for idle contents, each aimed at a level other than the one expected now."""
        while not self.stop.is_set():
            idle = [cid for cid, job in self.jobs().items() if job.get("status") in (None, "committed")]
            self.rng.shuffle(idle)
            for cid in idle[:4]:
                level = self.rng.choice([lv for lv in COUNTS if lv != self.expected[cid]])
                low, high = COUNTS[level]
                result = self.relocator("enqueue", "--cid", str(cid), "--count", str(self.rng.randint(low, high)), check=False)
                if result.returncode == 0:
                    self.expected[cid] = level
                else:
                    log(f"enqueue of cid {cid} refused: {result.stderr.strip()[:200]}")
            self.stop.wait(0.3)

    def in_flight(self):
        """Jobs moving across hosts now: cid → job."""
        found = {}
        for cid, job in self.jobs().items():
            if job.get("status") in ("moving",) and job.get("db_level") and job.get("target") \
                    and self.level_host(job["db_level"]) is not self.level_host(job["target"]):
                found[cid] = job
        return found

    def wait_for_pull(self, timeout=8):
        """A cross-host job whose pull has bytes done, if one comes within `timeout` s."""
        seen = {}

        def some():
            jobs = {cid: job for cid, job in self.in_flight().items() if self.sizes[cid] >= 8 << 20}
            if jobs:
                seen.update(jobs)
                return True
            return False
        poll(some, timeout, 0.05)
        if seen:
            # Somewhere within the transfer (the link's rate), not always at its start.
            time.sleep(self.rng.uniform(0, 8 * 2**20 / (self.args.rate * 1e6)))
        return seen

    # -------------------------------------------------------------------- faults

    def fault_kill(self):
        pulls = self.wait_for_pull()
        if pulls and self.rng.random() < 0.8:
            cid, job = self.rng.choice(sorted(pulls.items()))
            side = self.rng.choice(["target", "db_level"])
            host = self.level_host(job[side])
            what = f"the {'puller' if side == 'target' else 'source side'} of cid {cid} ({self.sizes[cid]} bytes)"
        else:
            host = self.rng.choice(self.hosts.hosts)
            what = "at a random moment"
        host.kill(f"worker-{host.name}")
        log(f"kill -9 {host.name}'s worker ({what})")
        self.stop.wait(self.rng.uniform(0.2, 2.0))
        self.start_worker(host)

    def fault_partition(self):
        pulls = self.wait_for_pull()
        host = self.rng.choice(self.hosts.hosts) if not pulls else \
            self.level_host(self.rng.choice(sorted(pulls.values(), key=lambda j: j.get("cid", ""))).get(self.rng.choice(["target", "db_level"])))
        low, high = self.args.partition
        seconds = self.rng.uniform(low, high) if self.rng.random() < 0.8 else self.rng.uniform(low, min(high, 60))
        if self.rng.random() < 0.8:
            seconds = min(seconds, self.rng.uniform(low, max(low, high / 4)))
        host.partition()
        down_at = time.time()
        self.partitioned = host
        # Across the cut link: moves between this host and another. Their sources present now
        # cannot be removed (the removal is asked over the cut link) until it is back.
        crossing = {}
        for cid, job in self.in_flight().items():
            if host in (self.level_host(job["db_level"]), self.level_host(job["target"])):
                crossing[cid] = job
        present = {}
        for cid in self.filenames:
            for level, path in self.copies(cid):
                present.setdefault(cid, set()).add(level)
        log(f"partition: {host.name}'s data link down for {seconds:.1f} s ({len(crossing)} pulls across it in flight: "
            f"{sorted(crossing)[:8]})")
        violations = set()
        while time.time() - down_at < seconds:
            for cid, job in self.jobs().items():
                source, target = job.get("db_level"), job.get("target")
                if not source or not target or self.level_host(source) is self.level_host(target):
                    continue
                if host not in (self.level_host(source), self.level_host(target)):
                    continue
                if source not in present.get(cid, set()):
                    continue   # already gone when the link went down
                # The source's worker may finish a removal asked before the link went down. The
                # proxy notes a request when its thread reads it, which may be a moment after the
                # cut for bytes sent before it; nothing crosses the cut link after it (a request
                # from the cut host is never sent, one to it never arrives), so a removal noted
                # within a second of the cut was asked before it.
                asked = self.level_host(source).proxy.passed(f"POST /transfer/v1/contents/{cid}/remove")
                if asked is not None and asked < down_at + 1.0:
                    continue
                if (cid, "removed") not in violations and not os.path.exists(
                        os.path.join(self.level_host(source).level_outside(source), self.filenames[cid])):
                    violations.add((cid, "removed"))
                    self.fail("partition", cid, f"the source in {source} on {self.level_host(source).name} was removed "
                                                f"{time.time() - down_at:.1f} s into a partition of {host.name} (job {job})")
                if (cid, "done") not in violations and job.get("status") in ("done", "committing", "committed"):
                    violations.add((cid, "done"))
                    self.fail("partition", cid, f"marked {job.get('status')} {time.time() - down_at:.1f} s into a partition "
                                                f"of {host.name} while its source in {source} was there at the start")
            time.sleep(0.1)
        if not violations:
            self.ok()
        # Back up: every move across it that was under way or waits because of it makes progress
        # within 5 s: more bytes verified or done, the move done, or its stage changed (the peer
        # answered: the source was removed, or it was kept because it changed during the pull and
        # the copy was withdrawn, the move starting again).
        waiting = {}
        for cid, job in self.jobs().items():
            source, target = job.get("db_level"), job.get("target")
            if not source or not target:
                continue
            hs, ht = self.level_host(source), self.level_host(target)
            if hs is ht or host not in (hs, ht):
                continue
            # Under way when the link went down, or put off while it was down.
            if cid in crossing or (job.get("status") in ("moving", "deferred", "retrying")
                                   and int(job.get("updated_at") or 0) >= down_at * 1000):
                waiting[cid] = job
        host.heal()
        self.partitioned = None
        up_at = time.time()

        def moved(cid):
            job, now = waiting[cid], self.job(cid)
            if now.get("gen") != job.get("gen") or now.get("status") in (None, "done", "committing", "committed"):
                return True
            if now.get("stage") != job.get("stage"):
                return True
            return any(int(now.get(k) or 0) > int(job.get(k) or 0) for k in ("bytes_done", "verified"))
        late = dict(waiting)
        while late and time.time() - up_at < RESUME_WITHIN:
            for cid in list(late):
                if moved(cid):
                    del late[cid]
            time.sleep(0.05)
        for cid, job in sorted(late.items()):
            self.fail("resume", cid, f"no progress within {RESUME_WITHIN:.0f} s of {host.name}'s link coming back "
                                     f"(job at the link's return {self.brief(job)}; 5 s later {self.brief(self.job(cid))}"
                                     f"{self.due(self.job(cid))})")
        if not late:
            self.ok()
        log(f"partition of {host.name} over: {len(waiting)} moves across it waiting, "
            f"{len(waiting) - len(late)} resumed within {RESUME_WITHIN:.0f} s")

    def fault_flip(self):
        host = self.rng.choice(self.hosts.hosts)
        count = self.rng.randint(1, 3)
        host.proxy.flip(count)
        log(f"flip: the next {count} answer chunks from {host.name} get a byte flipped")

    def fault_reset(self):
        self.wait_for_pull(4)
        counts = [h.proxy.reset_all() for h in self.hosts]
        log(f"reset: {sum(counts)} connections reset")

    def fault_stall(self):
        seconds = self.rng.uniform(1, 12)
        host = self.rng.choice(self.hosts.hosts)
        host.proxy.stall(seconds)
        log(f"stall: {host.name}'s proxy holds its connections for {seconds:.1f} s")
        self.stop.wait(seconds)

    def fault_full(self):
        host = self.hosts.holding("gold")
        root = host.level_outside("gold")
        filler = os.path.join(root, ".filler")
        stat = os.statvfs(root)
        room = stat.f_bavail * stat.f_frsize - 16 * 1024
        if room <= 0:
            return
        seconds = self.rng.uniform(2, 6)
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, room)
            except OSError:
                pass
            log(f"full: gold's disk on {host.name} filled ({room / 2**20:.0f} MiB) for {seconds:.1f} s")
            self.stop.wait(seconds)
        finally:
            os.close(fd)
            os.unlink(filler)

    def fault_change(self):
        pulls = self.wait_for_pull()
        if not pulls:
            return
        cid, job = self.rng.choice(sorted(pulls.items()))
        path = os.path.join(self.level_host(job["db_level"]).level_outside(job["db_level"]), self.filenames[cid])
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)   # never creates: gone is gone
        except FileNotFoundError:
            return
        try:
            os.write(fd, os.urandom(self.rng.randint(1, 8192)))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            self.versions[cid].add(digest(path))
        except FileNotFoundError:
            pass
        now = self.job(cid)
        log(f"change: appended to cid {cid}'s source in {job['db_level']} during its pull (then: status {now.get('status')}, "
            f"stage {now.get('stage', '-')}, verified {now.get('verified', 0)} of {self.sizes[cid]} bytes)")

    def chaos(self):
        shares = {"kill": 3, "partition": 2, "flip": 2, "reset": 1, "stall": 1, "full": 1, "change": 2}
        kinds = [kind for kind, weight in shares.items() for _ in range(weight)]
        began = time.time()
        done = 0
        while done < self.args.faults and (self.args.duration is None or time.time() - began < self.args.duration):
            kind = self.rng.choice(kinds)
            try:
                getattr(self, f"fault_{kind}")()
            except Exception as error:
                self.fail("harness", "-", f"the {kind} fault broke: {error}")
            self.stats[kind] += 1
            done += 1
            self.stop.wait(self.rng.uniform(*self.args.between))
        log(f"{done} faults in {time.time() - began:.0f} s: {self.stats}")

    # --------------------------------------------------------------------- checks

    def check(self):
        levels = dict(line.split("|") for line in self.pg.query("SELECT cid, content_level FROM contents").splitlines())
        for cid in sorted(self.filenames):
            copies = self.copies(cid)
            where = [level for level, _ in copies]
            wrong = []
            if not copies:
                self.fail("lost", cid, f"no copy on any host (expected in {self.expected[cid]}, job {self.job(cid)})")
                continue
            if len(copies) > 1:
                wrong.append(("doubled", f"copies in {where}"))
            for level, path in copies:
                if digest(path) not in self.versions[cid]:
                    wrong.append(("corrupted", f"the copy in {level} matches no version it had ({os.path.getsize(path)} bytes)"))
            if where[0] != self.expected[cid] or levels.get(str(cid)) != self.expected[cid]:
                wrong.append(("placement", f"in {where}, database says {levels.get(str(cid))}, last count chose "
                                           f"{self.expected[cid]} (job {self.job(cid)})"))
            for check, seen in wrong:
                self.fail(check, cid, seen)
            if not wrong:
                self.ok()
        dead = json.loads(self.relocator("dlq", "list", "--json", "--limit", "1000").stdout)["dead"]
        for letter in dead:
            self.fail("dead-letter", letter.get("cid"), f"{letter.get('reason')}: {letter.get('last_error')}")
        if not dead:
            self.ok()

    def main(self):
        began = time.time()
        self.setup()
        workload = threading.Thread(target=self.counts, daemon=True)
        workload.start()
        try:
            self.chaos()
        finally:
            self.stop.set()
            workload.join(30)
            for host in self.hosts:
                host.proxy.stalled.set()
                if host.namespace and self.partitioned is host:
                    host.heal()
        for host in self.hosts:
            if not host.alive(f"worker-{host.name}"):
                self.start_worker(host)
        drained = poll(self.idle, self.args.drain, 0.5)
        if drained:
            self.ok()
        else:
            stuck = [(cid, self.job(cid)) for cid in self.filenames if self.job(cid).get("status") not in (None, "committed")]
            for cid, job in stuck[:20]:
                self.fail("drain", cid, f"still in flight after {self.args.drain} s: {job}")
            if not stuck:
                self.fail("drain", "-", f"the queue did not drain in {self.args.drain} s")
        swept = poll(lambda: not self.temporaries(), 75, 0.5)
        if swept:
            self.ok()
        else:
            for name in self.temporaries():
                cid = name.rsplit("/", 1)[1].split("-")[0]
                self.fail("swept", cid, f"partial file {name} still there 75 s after the queue drained")
        self.check()
        moves = self.pg.query("SELECT count(*) FROM relocations").strip()
        logs = "".join(open(os.path.join(self.logs, f), errors="replace").read() for f in os.listdir(self.logs) if f.endswith(".err"))
        log(f"moves committed {moves}, pulls {logs.count('moved from another host')}, sources removed on proof "
            f"{logs.count('removed the source of a copy proven elsewhere')}, resumed transfers {logs.count('resuming a transfer')}, "
            f"flipped bytes {sum(h.proxy.flipped for h in self.hosts)}, faults {self.stats}, duration {time.time() - began:.0f} s")
        self.explain_failures()
        passed, failed = self.passes, len(self.failures)
        print(f"{passed} passed, {failed} failed", flush=True)
        return 0 if failed == 0 else 1

    def explain_failures(self):
        """The services' last lines about each failed content (a few contents, a few lines each):
        a run in CI leaves only its output behind."""
        cids = sorted({str(cid) for _, cid, _ in self.failures if str(cid).isdigit()}, key=int)[:3]
        for cid in cids:
            pattern = re.compile(rf'job\.cid=({cid}|"{cid}")\b|\bc{int(cid):04d}\b')
            lines = []
            for name in sorted(os.listdir(self.logs)):
                with open(os.path.join(self.logs, name), errors="replace") as file:
                    lines += [(line.rstrip()[:400], name) for line in file if pattern.search(line)]
            lines.sort()   # each line begins with its time
            log(f"FAILED cid={cid}: the services' last {min(len(lines), 12)} of {len(lines)} lines about it")
            for line, name in lines[-12:]:
                log(f"FAILED   {name}: {line}")

    def cleanup(self):
        self.stop.set()
        if self.committer and self.committer.poll() is None:
            self.committer.terminate()
            try:
                self.committer.wait(10)
            except subprocess.TimeoutExpired:
                self.committer.kill()
        if self.hosts:
            self.hosts.close()
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.remove()
        if self.args.keep:
            log(f"kept {self.work} (logs in {self.logs})")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def main(argv):
    parser = argparse.ArgumentParser(prog="Scripts/chaos --hosts", description="A cross-host chaos run of Relocator.")
    parser.add_argument("--hosts", type=int, choices=[2, 3], required=True)
    parser.add_argument("--short", action="store_true", help="about two minutes, for Scripts/test")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--faults", type=int, help="faults to inject (default: 500; --short: 25)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args(argv)
    if args.short:
        args.contents, args.max_mib, args.gold_mib, args.partition, args.between, args.drain = 24, 20, 256, (0.5, 6), (0.2, 1.0), 120
        args.faults, args.duration = args.faults or 25, 90
        args.rate = 20
    else:
        args.contents, args.max_mib, args.gold_mib, args.partition, args.between, args.drain = 80, 40, 1024, (0.5, 60), (0.2, 1.5), 300
        args.faults, args.duration = args.faults or 500, None
        args.rate = 60
    if os.geteuid() != 0:
        sys.exit("chaos: run as root (network and mount namespaces, PostgreSQL as the postgres user)")
    log(f"seed {args.seed}, {args.hosts} hosts{', short' if args.short else ''}")
    run = CrossHostRun(args)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return run.main()
    except KeyboardInterrupt:
        print("0 passed, 1 failed (interrupted)", flush=True)
        return 130
    except Exception as error:
        log(f"the run broke: {error}")
        print(f"{run.passes} passed, {len(run.failures) + 1} failed", flush=True)
        return 1
    finally:
        run.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
