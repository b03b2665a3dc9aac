"""The system Relocator replaces, as a benchmark peer: a Flask app (run under gunicorn) that answers
/post_sentence by looking the content up in SQL and its job in Redis, as the original did, and a
route that hands a move to RQ (the peer of Relocator's pipeline).

    PEER_DATABASE_URL=postgres://… PEER_REDIS_URL=redis://… PEER_LEVELS=gold=/a,silver=/b,bronze=/c \
        python3 -m gunicorn -k gthread -w 2 --threads 4 -b 127.0.0.1:PORT flask_app:app

POST /post_sentence (form cid, count): reads the content's row (filename, level) and the level table,
raises the top level's max_counts for a count above it, reads the content's job hash in Redis, writes
the job (status "update", worker_id null) and pushes its cid onto the target level's list when the
file is elsewhere, and answers the original's JSON (json.dumps of the seven keys, values as text).

POST /v1/contents/<cid>/count (JSON {"count": N}): the same lookup, then enqueues the verified move
(rq_mover.move) on RQ's "moves" queue; 202 {"job": id}, or 200 {"status": "in_place"}.
"""

import json
import os
import threading

import psycopg2
import redis
from flask import Flask, Response, request
from rq import Queue

import rq_mover

app = Flask(__name__)
_local = threading.local()
_redis = redis.Redis.from_url(os.environ["PEER_REDIS_URL"])
_moves = Queue("moves", connection=_redis)


def database():
    """One connection per thread, in autocommit (each statement its own transaction, as the
    original's cursor.execute + commit)."""
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = psycopg2.connect(os.environ["PEER_DATABASE_URL"])
        connection.autocommit = True
        _local.connection = connection
    return connection


def place(cid, count):
    """(filename, db_level, target) of a content for a count, or None for an unknown cid."""
    with database().cursor() as cursor:
        cursor.execute("SELECT filename, content_level FROM contents WHERE cid = %s", (cid,))
        row = cursor.fetchone()
        if row is None:
            return None
        filename, db_level = row
        cursor.execute("SELECT content_level, min_counts, max_counts FROM level ORDER BY min_counts")
        levels = cursor.fetchall()
        target = None
        for name, low, high in levels:
            if low <= count <= high:
                target = name
        if target is None and levels and count > levels[-1][2]:
            target = levels[-1][0]
            cursor.execute("UPDATE level SET max_counts = %s WHERE content_level = %s AND max_counts < %s",
                           (count, target, count))
        return filename, db_level, target


def answer(status, body, content_type="application/json"):
    return Response(body, status=status, content_type=content_type)


@app.post("/post_sentence")
def post_sentence():
    try:
        cid, count = int(request.form["cid"]), int(request.form["count"])
    except (KeyError, ValueError):
        return answer(400, json.dumps({"error": "bad_request"}))
    found = place(cid, count)
    if found is None:
        return answer(404, json.dumps({"error": "not_found"}))
    filename, db_level, target = found
    key = f"job:{cid}"
    existing = _redis.hgetall(key)
    worker = existing.get(b"worker_id")
    job = {"cid": str(cid), "count": str(count), "target": target, "db_level": db_level, "filename": filename,
           "worker_id": worker.decode() if worker else None, "status": "update" if target != db_level else "in_place"}
    pipe = _redis.pipeline(transaction=False)
    pipe.hset(key, mapping={k: v for k, v in job.items() if v is not None})
    if target != db_level:
        pipe.lpush(f"queue:{target}", cid)
    pipe.execute()
    return answer(200, json.dumps(job))


@app.post("/v1/contents/<int:cid>/count")
def count(cid):
    body = request.get_json(silent=True) or {}
    value = body.get("count")
    if not isinstance(value, int):
        return answer(400, json.dumps({"error": "bad_request"}))
    found = place(cid, value)
    if found is None:
        return answer(404, json.dumps({"error": "not_found"}))
    filename, db_level, target = found
    if target == db_level:
        return answer(200, json.dumps({"status": "in_place", "cid": cid}))
    job = _moves.enqueue(rq_mover.move, cid, filename, db_level, target)
    return answer(202, json.dumps({"job": job.id}))
