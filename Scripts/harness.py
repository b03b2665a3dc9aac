"""Private servers and relocator processes for Scripts/chaos and Scripts/bench.

Every server and process started here is stopped by PID in `stop()`; nothing outlives the run.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class Redis:
    """redis-server on a free loopback port; `aof` turns on appendonly with fsync every second."""

    def __init__(self, directory, aof=False, bind=None):
        self.directory = directory
        self.bind = bind   # an address of its own beside loopback (another network namespace's way in)
        self.port = free_port()
        self.aof = aof
        self.process = None
        os.makedirs(directory, exist_ok=True)

    @property
    def url(self):
        return f"redis://{self.bind or '127.0.0.1'}:{self.port}/0"

    def start(self):
        bind = ["127.0.0.1", self.bind, "--protected-mode", "no"] if self.bind else ["127.0.0.1"]
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", *bind, "--dir", self.directory, "--save", "",
             "--maxmemory-policy", "noeviction", "--logfile", os.path.join(self.directory, "redis.log"), *persistence],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli("ping").strip() == "PONG", "redis")

    def cli(self, *arguments):
        return subprocess.run(["redis-cli", "-p", str(self.port), "--raw", *arguments],
                              capture_output=True, text=True, check=True).stdout

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()   # SIGTERM: Redis writes and fsyncs its AOF before it exits
            self.process.wait(30)


class RedisCluster:
    """A Redis Cluster of plain processes on loopback: `masters` masters with one replica each, a short
    node timeout so failovers are quick. `failover()` has a replica take over its master
    (CLUSTER FAILOVER); `kill9()` kills a master so its replica is promoted."""

    def __init__(self, directory, masters=3):
        self.directory = directory
        self.ports = [free_port() for _ in range(masters * 2)]
        # The cluster bus gets a free port of its own (by default port + 10000, which may not exist).
        self.bus_ports = {port: free_port() for port in self.ports}
        self.masters = masters
        self.processes = {}
        os.makedirs(directory, exist_ok=True)

    @property
    def url(self):
        return "redis-cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:self.masters])

    def start(self):
        for port in self.ports:
            self.start_node(port)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports], "--cluster-replicas", "1",
                        "--cluster-yes"], capture_output=True, text=True, check=True)
        wait_for(self.healthy, "the cluster", timeout=60)

    def start_node(self, port):
        data = os.path.join(self.directory, str(port))
        os.makedirs(data, exist_ok=True)
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--cluster-port", str(self.bus_ports[port]), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes",
             "--cluster-config-file", os.path.join(data, "nodes.conf"), "--cluster-node-timeout", "1000",
             "--cluster-replica-validity-factor", "0", "--dir", data, "--save", "", "--appendonly", "no",
             "--maxmemory-policy", "noeviction", "--logfile", os.path.join(data, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli(port, "ping").strip() == "PONG", f"redis node {port}")

    def cli(self, port, *arguments):
        return subprocess.run(["redis-cli", "-p", str(port), "--raw", *arguments], capture_output=True, text=True).stdout

    def nodes(self):
        """(port, is_master, master_id, id, failing) of every node, as one live node sees them."""
        for port in self.alive():
            text = self.cli(port, "CLUSTER", "NODES")
            if text.strip():
                found = []
                for line in text.splitlines():
                    fields = line.split()
                    node_port = int(fields[1].split("@")[0].split(":")[1])
                    found.append((node_port, "master" in fields[2], fields[3], fields[0], "fail" in fields[2]))
                return found
        return []

    def alive(self):
        return [port for port, process in self.processes.items() if process.poll() is None]

    def healthy(self):
        for port in self.alive():
            if "cluster_state:ok" not in self.cli(port, "CLUSTER", "INFO"):
                return False
        masters = [n for n in self.nodes() if n[1] and not n[4] and n[0] in self.alive()]
        return len(masters) == self.masters

    def master_ports(self):
        return [n[0] for n in self.nodes() if n[1] and not n[4] and n[0] in self.alive()]

    def failover(self):
        """A replica takes over from its master, both alive. Returns (old master, new master)."""
        nodes = self.nodes()
        master = next(n for n in nodes if n[1] and not n[4] and n[0] in self.alive())
        replica = next(n for n in nodes if not n[1] and n[2] == master[3] and n[0] in self.alive())
        self.cli(replica[0], "CLUSTER", "FAILOVER")
        wait_for(lambda: replica[0] in self.master_ports(), "the cluster failover", timeout=30)
        wait_for(self.healthy, "the cluster after a failover", timeout=60)
        return master[0], replica[0]

    def kill9(self):
        """Kills a master; its replica is promoted. Returns the killed port."""
        victim = self.master_ports()[0]
        self.processes[victim].kill()
        self.processes[victim].wait()
        wait_for(self.healthy, "the cluster after a master was killed", timeout=60)
        return victim

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


class RedisSentinel:
    """A master, a replica and three sentinels (quorum 2) on loopback. `kill9()` kills the master;
    the sentinels promote the replica."""

    name = "relocator"

    def __init__(self, directory):
        self.directory = directory
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes = {}
        os.makedirs(directory, exist_ok=True)

    @property
    def url(self):
        return "redis-sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports) + "/" + self.name

    def start(self):
        master, replica = self.data_ports
        for port, extra in ((master, []), (replica, ["--replicaof", "127.0.0.1", str(master)])):
            data = os.path.join(self.directory, str(port))
            os.makedirs(data, exist_ok=True)
            self.processes[port] = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", data, "--save", "", "--appendonly", "no",
                 "--maxmemory-policy", "noeviction", "--logfile", os.path.join(data, "redis.log"), *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda port=port: self.cli(port, "ping").strip() == "PONG", f"redis {port}")
        for port in self.sentinel_ports:
            config = os.path.join(self.directory, f"sentinel-{port}.conf")
            with open(config, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\nsentinel monitor {self.name} 127.0.0.1 {master} 2\n"
                        f"sentinel down-after-milliseconds {self.name} 1000\nsentinel failover-timeout {self.name} 5000\n"
                        f"sentinel parallel-syncs {self.name} 1\n")
            self.processes[port] = subprocess.Popen(["redis-server", config, "--sentinel", "--logfile",
                                                     os.path.join(self.directory, f"sentinel-{port}.log")],
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_for(lambda port=port: self.cli(port, "ping").strip() == "PONG", f"sentinel {port}")
        wait_for(lambda: "slave0" in self.cli(master, "INFO", "replication"), "the replica")

    def cli(self, port, *arguments):
        return subprocess.run(["redis-cli", "-p", str(port), "--raw", *arguments], capture_output=True, text=True).stdout

    def master(self):
        answer = self.cli(self.sentinel_ports[0], "SENTINEL", "get-master-addr-by-name", self.name).split()
        return int(answer[1]) if len(answer) == 2 else None

    def kill9(self):
        victim = self.master()
        self.processes[victim].kill()
        self.processes[victim].wait()
        wait_for(lambda: self.master() not in (None, victim), "the sentinels' failover", timeout=60)
        return victim

    def failover(self):
        old = self.master()
        self.cli(self.sentinel_ports[0], "SENTINEL", "FAILOVER", self.name)
        wait_for(lambda: self.master() not in (None, old), "the sentinel failover", timeout=60)
        return old, self.master()

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


class Postgres:
    """A PostgreSQL cluster of its own, owned by the postgres user, on a free loopback port."""

    def __init__(self, fsync=True, listen=None):
        self.port = free_port()
        self.listen = listen   # an address of its own beside loopback, open to its /24 without a password
        self.root = tempfile.mkdtemp(prefix="relocator-pg.")
        self.fsync = fsync
        os.makedirs(os.path.join(self.root, "socket"))
        subprocess.run(["chown", "-R", "postgres:", self.root], check=True)
        self.as_postgres(self.tool("initdb"), "-D", self.root + "/data", "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--locale=C.UTF-8")

    @property
    def url(self):
        return f"postgres://postgres@{self.listen or '127.0.0.1'}:{self.port}/postgres"

    @staticmethod
    def tool(name):
        versions = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(x) for x in v.split(".")])
        return f"/usr/lib/postgresql/{versions[-1]}/bin/{name}"

    def as_postgres(self, *command):
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        addresses = f"127.0.0.1,{self.listen}" if self.listen else "127.0.0.1"
        options = f"-p {self.port} -k {self.root}/socket -c listen_addresses={addresses}"
        if self.listen:
            with open(self.root + "/data/pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.listen.rsplit('.', 1)[0]}.0/24 trust\n")
        if not self.fsync:
            options += " -c fsync=off"
        self.as_postgres(self.tool("pg_ctl"), "-D", self.root + "/data", "-l", self.root + "/log", "-w", "-t", "60",
                         "-o", options, "start")

    def stop(self):
        if os.path.exists(self.root + "/data/postmaster.pid"):
            subprocess.run(["runuser", "-u", "postgres", "--", self.tool("pg_ctl"), "-D", self.root + "/data",
                            "-m", "fast", "-w", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def query(self, sql, database_url=None):
        return subprocess.run(["psql", database_url or self.url, "-Atc", sql], capture_output=True, text=True, check=True).stdout

    def remove(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class Relocator:
    """The relocator binary: one-shot commands and long-running processes, logs under `logs`."""

    def __init__(self, binary, work, environment):
        self.binary = binary
        self.work = work
        self.logs = os.path.join(work, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.environment = environment
        self.processes = {}
        self.lock = threading.Lock()

    def env(self):
        env = dict(os.environ)
        env.update(self.environment)
        return env

    def run(self, *arguments, check=True):
        result = subprocess.run([self.binary, *arguments], env=self.env(), cwd=self.work, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"relocator {' '.join(arguments)}: {result.stderr.strip()}")
        return result

    def start(self, name, *arguments, environment=None):
        out = open(os.path.join(self.logs, f"{name}.out"), "ab")
        err = open(os.path.join(self.logs, f"{name}.err"), "ab")
        env = self.env()
        env.update(environment or {})
        process = subprocess.Popen([self.binary, *arguments], env=env, cwd=self.work, stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL)
        with self.lock:
            self.processes[name] = process
        return process

    def start_api(self, name="api", environment=None):
        path = os.path.join(self.logs, f"{name}.out")
        if os.path.exists(path):
            os.unlink(path)
        process = self.start(name, "serve", "--port", "0", environment=environment)
        wait_for(lambda: "listening on" in open(path).read(), "the API")
        return process, int(open(path).read().split("listening on http://127.0.0.1:")[1].split()[0])

    def alive(self, prefix):
        with self.lock:
            return [n for n, p in self.processes.items() if n.startswith(prefix) and p.poll() is None]

    def kill(self, name):
        with self.lock:
            process = self.processes.get(name)
        if process and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def peak_rss_kib(self, name):
        """The process' peak resident memory (VmHWM), while it still runs."""
        with self.lock:
            process = self.processes.get(name)
        with open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        with self.lock:
            processes = list(self.processes.values())
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


class Resp:
    """A minimal Redis client on one socket, for polling in tight loops without starting redis-cli."""

    def __init__(self, port):
        self.calls = 0   # commands sent, to leave this script's own out of Redis' statistics
        self.socket = socket.create_connection(("127.0.0.1", port))
        self.reader = self.socket.makefile("rb")

    def call(self, *arguments):
        self.calls += 1
        parts = [f"*{len(arguments)}\r\n".encode()]
        for argument in arguments:
            data = str(argument).encode()
            parts.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
        self.socket.sendall(b"".join(parts))
        return self.reply()

    def reply(self):
        line = self.reader.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            data = self.reader.read(length + 2)[:-2]
            return data.decode()
        if kind == b"*":
            length = int(rest)
            return None if length < 0 else [self.reply() for _ in range(length)]
        raise RuntimeError(f"redis: unexpected reply {line!r}")

    def close(self):
        self.reader.close()
        self.socket.close()
