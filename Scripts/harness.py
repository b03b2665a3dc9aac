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

    def __init__(self, directory, aof=False):
        self.directory = directory
        self.port = free_port()
        self.aof = aof
        self.process = None
        os.makedirs(directory, exist_ok=True)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory, "--save", "",
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


class Postgres:
    """A PostgreSQL cluster of its own, owned by the postgres user, on a free loopback port."""

    def __init__(self, fsync=True):
        self.port = free_port()
        self.root = tempfile.mkdtemp(prefix="relocator-pg.")
        self.fsync = fsync
        os.makedirs(os.path.join(self.root, "socket"))
        subprocess.run(["chown", "-R", "postgres:", self.root], check=True)
        self.as_postgres(self.tool("initdb"), "-D", self.root + "/data", "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--locale=C.UTF-8")

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def tool(name):
        versions = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: [int(x) for x in v.split(".")])
        return f"/usr/lib/postgresql/{versions[-1]}/bin/{name}"

    def as_postgres(self, *command):
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        options = f"-p {self.port} -k {self.root}/socket -c listen_addresses=127.0.0.1"
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

    def start_api(self, name="api"):
        path = os.path.join(self.logs, f"{name}.out")
        if os.path.exists(path):
            os.unlink(path)
        process = self.start(name, "serve", "--port", "0")
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
