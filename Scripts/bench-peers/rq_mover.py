"""A verified move in Python, as an RQ job: the benchmark peer of a Relocator worker and committer.

The same safety steps as Relocator's cross-filesystem move: the source is copied into a temporary
file in the target directory while SHA-256 hashes it in flight; the copy is fsynced, dropped from the
page cache and read back from the device, and its hash compared; it is renamed into place and the
target directory fsynced; only then is the source removed and its directory fsynced. Then the row is
committed (the content's level and a relocation row, one transaction per move: RQ has no batches)
and `peer:committed` counts it.

    PEER_DATABASE_URL=… PEER_REDIS_URL=… PEER_LEVELS=gold=/a,silver=/b,bronze=/c python3 rq_mover.py

runs one RQ worker (SimpleWorker: each job in the worker's process, no fork per job) on "moves".
"""

import hashlib
import os
import socket

import psycopg2
import redis

CHUNK = 1 << 20
_state = {}


def levels():
    if "levels" not in _state:
        _state["levels"] = dict(part.split("=", 1) for part in os.environ["PEER_LEVELS"].split(","))
    return _state["levels"]


def database():
    connection = _state.get("database")
    if connection is None or connection.closed:
        connection = psycopg2.connect(os.environ["PEER_DATABASE_URL"])
        _state["database"] = connection
    return connection


def counter():
    if "redis" not in _state:
        _state["redis"] = redis.Redis.from_url(os.environ["PEER_REDIS_URL"])
    return _state["redis"]


def fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def move(cid, filename, from_level, to_level):
    source_dir, target_dir = levels()[from_level], levels()[to_level]
    source = os.path.join(source_dir, filename)
    target = os.path.join(target_dir, filename)
    temporary = os.path.join(target_dir, f".{filename}.{os.getpid()}.part")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as reader, open(temporary, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
                size += len(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        # Read back from the device: what the disk holds, not what the page cache remembers.
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            check = hashlib.sha256()
            while chunk := os.read(fd, CHUNK):
                check.update(chunk)
        finally:
            os.close(fd)
        if check.digest() != digest.digest():
            raise IOError(f"{temporary}: the copy read back differs from the source")
        os.rename(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    fsync_directory(target_dir)
    os.unlink(source)
    fsync_directory(source_dir)
    connection = database()
    with connection, connection.cursor() as cursor:
        cursor.execute("UPDATE contents SET content_level = %s, update_time = now() WHERE cid = %s", (to_level, cid))
        cursor.execute("INSERT INTO relocations (job_id, cid, from_level, to_level, bytes, checksum, worker, attempts, gen) "
                       "VALUES (%s, %s, %s, %s, %s, %s, %s, 0, 1)",
                       (f"rq:{cid}", cid, from_level, to_level, size, digest.hexdigest(), f"{socket.gethostname()}:{os.getpid()}"))
    counter().incr("peer:committed")
    return size


if __name__ == "__main__":
    from rq import Queue, SimpleWorker

    connection = redis.Redis.from_url(os.environ["PEER_REDIS_URL"])
    SimpleWorker([Queue("moves", connection=connection)], connection=connection).work(logging_level="WARNING")
