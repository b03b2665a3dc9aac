"""Separate hosts on one machine, for Scripts/chaos --hosts and Scripts/bench --parts crosshost.

Each host is a network namespace with two links into the root namespace:

    root namespace                                   host <n> (netns rl<run>h<n>)
    bridge rl<run>m  10.A.B.1  ── veth rl<run>h<n>m ── mgmt 10.A.B.(10+n)   Redis, PostgreSQL
    bridge rl<run>d  10.A.C.1  ── veth rl<run>h<n>d ── data 10.A.C.(10+n)   transfers between hosts

Redis and PostgreSQL listen on the management bridge's address (127.0.0.1 of the root namespace
is not reachable from another namespace). Transfers go over the data bridge, directly or through a
`Proxy` in the root namespace that a worker advertises instead of its own address; a partition
(`Host.partition()`) sets the host's data link down, so that it still reaches Redis and PostgreSQL
but no other host. `Host.limit(rate)` puts a `tc tbf` on the host's outgoing data link.

Each host has a mount namespace of its own (`unshare -m --propagation private`), held by a small
process for the host's whole life so that its files outlive any worker: a tmpfs over the run's
`levels/` directory and a tmpfs per level the host holds beneath it, so that a path of another
host's level does not exist there. Workers join both namespaces (`nsenter`); the harness reads and
writes a host's files through `/proc/<holder>/root/`.

Names carry a random run id (interface names are at most 15 characters), so runs may go in
parallel. Everything is torn down in `Hosts.close()`, also when the run fails: processes killed by
PID (and any left in a host's namespace, `ip netns pids`), the holders' mount namespaces end with
their holder, namespaces deleted and bridges removed by name. A registry file per run under
/run/relocator-hosts/ names the run's owner; `sweep_stale()` removes what a run whose owner died
left behind.
"""

import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

REGISTRY = "/run/relocator-hosts"
TRANSFER_PORT = 7700
REQUEST_LINE = re.compile(rb"(GET|HEAD|POST|PUT|DELETE) (/\S*) HTTP/1\.[01]\r\n")   # each host's own network namespace: the same port on every host


def sh(*command, check=True):
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def wait_until(condition, what, timeout=60, interval=0.05):
    deadline = time.time() + timeout
    while True:
        try:
            if condition():
                return
        except Exception:
            pass
        if time.time() >= deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def _used_subnets():
    used = set()
    for line in sh("ip", "-o", "-4", "addr", "show").stdout.splitlines():
        fields = line.split()
        address = fields[fields.index("inet") + 1].split("/")[0].split(".")
        used.add(tuple(address[:3]))
    return used


def _teardown(run_id, hosts):
    """Removes the namespaces and bridges of a run by name, killing what still runs in them."""
    for index in range(1, hosts + 1):
        namespace = f"rl{run_id}h{index}"
        if os.path.exists(f"/run/netns/{namespace}"):
            for pid in sh("ip", "netns", "pids", namespace, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", namespace, check=False)
    for suffix in ("m", "d"):
        if os.path.exists(f"/sys/class/net/rl{run_id}{suffix}"):
            sh("ip", "link", "del", f"rl{run_id}{suffix}", check=False)


def _started(pid):
    """The process' start time (clock ticks since boot), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def sweep_stale():
    """Tears down what runs whose owner process is gone left behind (a run killed with SIGKILL)."""
    if not os.path.isdir(REGISTRY):
        return
    for name in os.listdir(REGISTRY):
        path = os.path.join(REGISTRY, name)
        try:
            with open(path) as f:
                entry = json.load(f)
            os.kill(entry["owner"], 0)
            continue   # still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError, KeyError):
            continue
        for pid, started in (p if isinstance(p, list) else (p, -1) for p in entry.get("pids", [])):
            if _started(pid) == started:   # the same process, not a later one under a reused PID
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _teardown(entry["run"], entry["hosts"])
        os.unlink(path)


class Proxy:
    """A TCP proxy in the root namespace, on the data bridge, in front of one host's transfer
    endpoint. Counts the bytes of each direction; can add latency per chunk, stall every
    connection, reset every connection (RST) and flip bytes of the answers (upstream → client)."""

    def __init__(self, listen_host, upstream):
        self.upstream = upstream
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((listen_host, 0))
        self.server.listen(64)
        self.address = f"{listen_host}:{self.server.getsockname()[1]}"
        self.lock = threading.Lock()
        self.down_bytes = 0        # upstream (the source host) → client (the puller)
        self.up_bytes = 0
        self.connections_made = 0
        self.latency = 0.0         # seconds added before each forwarded chunk
        self.flips = 0             # bytes still to flip, one per answer chunk
        self.flipped = 0
        self.stalled = threading.Event()
        self.stalled.set()         # set: traffic flows
        self.live = set()
        self.requests = {}         # "METHOD /path" → when the proxy last passed it on
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        host, port = self.upstream.rsplit(":", 1)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
            upstream.settimeout(None)
        except OSError:
            self._reset(client)
            return
        with self.lock:
            self.connections_made += 1
            self.live.add((client, upstream))
        try:
            sockets = [client, upstream]
            while not self.closed:
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for source in readable:
                    data = source.recv(262144)
                    if not data:
                        return
                    self.stalled.wait()
                    if self.latency:
                        time.sleep(self.latency)
                    if source is upstream:
                        with self.lock:
                            if self.flips > 0:
                                self.flips -= 1
                                self.flipped += 1
                                at = random.randrange(len(data))
                                data = data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1:]
                            self.down_bytes += len(data)
                        client.sendall(data)
                    else:
                        now = time.time()
                        with self.lock:
                            self.up_bytes += len(data)
                            for method, path in REQUEST_LINE.findall(data):
                                self.requests[f"{method.decode()} {path.decode(errors='replace')}"] = now
                        upstream.sendall(data)
        except (OSError, ValueError):
            # A reset fault closed a socket of this connection under it (select then sees fd -1).
            pass
        finally:
            with self.lock:
                self.live.discard((client, upstream))
            for s in (client, upstream):
                try:
                    s.close()
                except OSError:
                    pass

    @staticmethod
    def _reset(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass

    def reset_all(self):
        """Every open connection ends with a reset on both sides. Returns how many."""
        with self.lock:
            live = list(self.live)
        for client, upstream in live:
            self._reset(client)
            self._reset(upstream)
        return len(live)

    def flip(self, count=1):
        """The next `count` chunks of answers each get one byte flipped."""
        with self.lock:
            self.flips += count

    def stall(self, seconds):
        self.stalled.clear()
        threading.Timer(seconds, self.stalled.set).start()

    def passed(self, request):
        """When the proxy last passed on a request "METHOD /path" (None: never)."""
        with self.lock:
            return self.requests.get(request)

    def counters(self):
        with self.lock:
            return {"down": self.down_bytes, "up": self.up_bytes, "connections": self.connections_made}

    def close(self):
        self.closed = True
        self.stalled.set()
        try:
            self.server.close()
        except OSError:
            pass
        self.reset_all()


class Host:
    """One host: its network namespace, its mount namespace's holder and its processes."""

    def __init__(self, hosts, index, levels):
        self.hosts = hosts
        self.index = index
        self.name = f"h{index}"
        self.namespace = f"rl{hosts.run_id}h{index}"
        self.mgmt_address = f"{hosts.mgmt_prefix}.{10 + index}"
        self.data_address = f"{hosts.data_prefix}.{10 + index}"
        self.levels = dict(levels)       # level name → tmpfs size in MiB
        self.holder = None
        self.processes = {}
        self.proxy = None
        self.rate = None

    def level_path(self, level):
        """The level's directory as the host's processes see it."""
        return os.path.join(self.hosts.levels_root, self.name, level)

    def outside(self, path):
        """The same path as the harness (root mount namespace) reaches it."""
        return f"/proc/{self.holder.pid}/root{path}"

    def level_outside(self, level):
        return self.outside(self.level_path(level))

    @property
    def transfer_listen(self):
        return f"{self.data_address}:{TRANSFER_PORT}"

    @property
    def transfer_advertise(self):
        """Through the host's proxy when it has one."""
        return self.proxy.address if self.proxy else self.transfer_listen

    def up(self):
        h = self.hosts
        sh("ip", "netns", "add", self.namespace)
        for kind, bridge, address, prefix in (("m", h.mgmt_bridge, self.mgmt_address, h.mgmt_prefix),
                                              ("d", h.data_bridge, self.data_address, h.data_prefix)):
            outer, inner = f"{self.namespace}{kind}", f"{self.namespace}{kind}i"
            sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            sh("ip", "link", "set", inner, "netns", self.namespace)
            sh("ip", "link", "set", outer, "master", bridge)
            sh("ip", "link", "set", outer, "up")
            name = "mgmt" if kind == "m" else "data"
            self.ns("ip", "link", "set", inner, "name", name)
            self.ns("ip", "addr", "add", f"{address}/24", "dev", name)
            self.ns("ip", "link", "set", name, "up")
        self.ns("ip", "link", "set", "lo", "up")
        # The mount namespace: a tmpfs over the levels' root hides every other host's level; one
        # tmpfs per level held here, of its own size.
        script = [f"mount -t tmpfs -o size=1m relocator-hosts {h.levels_root}"]
        for level, mib in self.levels.items():
            path = self.level_path(level)
            script.append(f"mkdir -p {path} && mount -t tmpfs -o size={mib}m relocator-{level} {path}")
        script.append("echo ready; exec sleep infinity")
        self.holder = subprocess.Popen(["ip", "netns", "exec", self.namespace, "unshare", "-m", "--propagation", "private",
                                        "sh", "-ec", " && ".join(script)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        h.remember(self.holder.pid)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"host {self.name}: its mount namespace was not made: {self.holder.stderr.read().strip()}")
        for level in self.levels:
            wait_until(lambda level=level: os.path.isdir(self.level_outside(level)), f"{self.name}'s {level}")

    def reaches(self, address, timeout=1):
        """A TCP connection from this host to a closed port of `address` is refused (the address answers)."""
        probe = ("import socket,sys\ntry: socket.create_connection((sys.argv[1], 9), timeout=float(sys.argv[2]))\n"
                 "except ConnectionRefusedError: sys.exit(0)\nexcept OSError: sys.exit(1)\n")
        return self.ns("python3", "-c", probe, address, str(timeout), check=False).returncode == 0

    def ns(self, *command, check=True):
        return sh("ip", "netns", "exec", self.namespace, *command, check=check)

    def enter(self):
        """The command prefix that runs a program on this host (its network and mount namespaces)."""
        return ["nsenter", f"--net=/run/netns/{self.namespace}", f"--mount=/proc/{self.holder.pid}/ns/mnt",
                f"--wd={self.hosts.work}", "--"]

    def start(self, name, command, environment, log_dir):
        """A long-running process on this host; its output in log_dir/<name>.out and .err."""
        out = open(os.path.join(log_dir, f"{name}.out"), "ab")
        err = open(os.path.join(log_dir, f"{name}.err"), "ab")
        process = subprocess.Popen(self.enter() + list(command), env=environment, stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL, cwd=self.hosts.work)
        out.close()
        err.close()
        self.processes[name] = process
        self.hosts.remember(process.pid)
        return process

    def run(self, command, environment=None, check=True, **kwargs):
        result = subprocess.run(self.enter() + list(command), env=environment, capture_output=True, text=True, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(command)}: {result.stderr.strip()}")
        return result

    def kill(self, name, sig=signal.SIGKILL):
        process = self.processes.get(name)
        if process and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def alive(self, name):
        process = self.processes.get(name)
        return bool(process and process.poll() is None)

    def add_proxy(self):
        self.proxy = Proxy(self.hosts.data_gateway, self.transfer_listen)
        return self.proxy

    def partition(self):
        """This host's data link down: no other host (nor its proxy) reaches it; Redis still does."""
        sh("ip", "link", "set", f"{self.namespace}d", "down")

    def heal(self):
        sh("ip", "link", "set", f"{self.namespace}d", "up")

    def limit(self, mbytes_per_s):
        """A token bucket on the host's outgoing data link (None: no limit)."""
        if mbytes_per_s is None:
            self.ns("tc", "qdisc", "del", "dev", "data", "root", check=False)
        else:
            rate = int(mbytes_per_s * 8_000_000)
            burst = max(64 * 1024, rate // 8 // 100)   # 10 ms of traffic
            self.ns("tc", "qdisc", "replace", "dev", "data", "root", "tbf", "rate", f"{rate}bit",
                    "burst", str(burst), "latency", "100ms")
        self.rate = mbytes_per_s

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self.proxy:
            self.proxy.close()
        if self.holder and self.holder.poll() is None:
            self.holder.kill()   # its mount namespace, and the level tmpfs in it, end with it
            self.holder.wait(10)


class Hosts:
    """2 or 3 hosts (`levels`: one dict per host, level name → tmpfs MiB) joined by two bridges."""

    def __init__(self, work, levels):
        if os.geteuid() != 0:
            raise RuntimeError("separate hosts need root (network and mount namespaces)")
        sweep_stale()
        self.work = work
        self.levels_root = os.path.join(work, "levels")
        os.makedirs(self.levels_root, exist_ok=True)
        self.run_id = "%05x" % random.SystemRandom().randrange(16 ** 5)
        self.mgmt_bridge, self.data_bridge = f"rl{self.run_id}m", f"rl{self.run_id}d"
        self.pids = []
        self.registry = os.path.join(REGISTRY, self.run_id)
        used = _used_subnets()
        rng = random.SystemRandom()
        while True:
            a, b = rng.randrange(64, 250), rng.randrange(0, 127)
            mgmt, data = ("10", str(a), str(2 * b)), ("10", str(a), str(2 * b + 1))
            if mgmt not in used and data not in used:
                break
        self.mgmt_prefix, self.data_prefix = ".".join(mgmt), ".".join(data)
        self.mgmt_gateway, self.data_gateway = self.mgmt_prefix + ".1", self.data_prefix + ".1"
        self.hosts = [Host(self, index + 1, host_levels) for index, host_levels in enumerate(levels)]
        self._write_registry()
        try:
            for bridge, gateway in ((self.mgmt_bridge, self.mgmt_gateway), (self.data_bridge, self.data_gateway)):
                sh("ip", "link", "add", bridge, "type", "bridge")
                sh("ip", "addr", "add", f"{gateway}/24", "dev", bridge)
                sh("ip", "link", "set", bridge, "up")
            for host in self.hosts:
                host.up()
            for host in self.hosts:
                for other in self.hosts:
                    if other is not host:
                        wait_until(lambda host=host, other=other: host.reaches(other.data_address),
                                   f"{host.name} reaching {other.name}", timeout=20)
                wait_until(lambda host=host: host.reaches(self.mgmt_gateway), f"{host.name} reaching the servers' side",
                           timeout=20)
        except BaseException:
            self.close()
            raise

    def _write_registry(self):
        os.makedirs(REGISTRY, exist_ok=True)
        with open(self.registry + ".tmp", "w") as f:
            json.dump({"run": self.run_id, "hosts": len(self.hosts), "owner": os.getpid(), "pids": self.pids}, f)
        os.replace(self.registry + ".tmp", self.registry)

    def remember(self, pid):
        self.pids.append((pid, _started(pid)))
        self._write_registry()

    def __iter__(self):
        return iter(self.hosts)

    def __getitem__(self, index):
        return self.hosts[index]

    def holding(self, level):
        return next(host for host in self.hosts if level in host.levels)

    def levels_setting(self):
        """RELOCATOR_LEVELS as every host names them (each its own path; the others do not exist there)."""
        return ",".join(f"{level}={host.level_path(level)}" for host in self.hosts for level in host.levels)

    def close(self):
        for host in self.hosts:
            try:
                host.stop()
            except Exception:
                pass
        for pid, started in self.pids:
            if _started(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _teardown(self.run_id, len(self.hosts))
        try:
            os.unlink(self.registry)
        except FileNotFoundError:
            pass


def self_test():
    """Two hosts: each sees only its own level, they reach each other and the root side, a partition
    cuts the data link only, and nothing is left afterwards."""
    import tempfile
    work = tempfile.mkdtemp(prefix="relocator-hosts.")
    hosts = None
    try:
        hosts = Hosts(work, [{"bronze": 8}, {"gold": 8}])
        a, b = hosts[0], hosts[1]
        assert a.run(["test", "-d", a.level_path("bronze")]).returncode == 0
        assert a.run(["test", "-e", b.level_path("gold")], check=False).returncode != 0, "h1 sees h2's level"
        assert not os.path.exists(b.level_path("gold")), "the root namespace sees h2's level"
        with open(os.path.join(b.level_outside("gold"), "x"), "w") as f:
            f.write("x")
        assert b.run(["cat", os.path.join(b.level_path("gold"), "x")]).stdout == "x"
        a.partition()
        assert not a.reaches(b.data_address), "the partition let a connection through"
        assert not b.reaches(a.data_address), "the partition let a connection through"
        assert a.reaches(hosts.mgmt_gateway), "the partition cut the servers' side"
        a.heal()
        wait_until(lambda: a.reaches(b.data_address), "the link back")
        print("hosts: self-test passed")
    finally:
        namespaces = [h.namespace for h in hosts] if hosts else []
        if hosts:
            hosts.close()
        shutil.rmtree(work, ignore_errors=True)
    left = [n for n in namespaces if os.path.exists(f"/run/netns/{n}")]
    assert not left and not os.path.exists(f"/sys/class/net/{hosts.data_bridge}"), f"left behind: {left}"


if __name__ == "__main__":
    self_test()
