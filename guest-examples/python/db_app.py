"""A Flask application that uses a real PostgreSQL (pg8000) and a real Redis (redis-py),
through the sockets a route's `outbound` grant opens to the guest.

    GET  /            a page: a visit counter kept in Redis (INCR) and the notes in PostgreSQL
    POST /notes       form field `text`: adds a note (the table is created if missing)
    GET  /notes.json  the notes as JSON

Settings come from the environment (a route's `env` in routes.toml), read at request time:
PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, REDIS_HOST, REDIS_PORT. Grant exactly those
targets, written as literal addresses for loopback (a granted *name* never resolves to
loopback):

    cheroot-wasm build-python db_app:app --path guest-examples/python \
        -r guest-examples/python/db-requirements.txt -o db_app.wasm

    [[route]]
    path = "/db"
    component = "db_app.wasm"
    env = { PGHOST = "127.0.0.1", PGPORT = "5432", PGUSER = "postgres", PGDATABASE = "postgres",
            REDIS_HOST = "127.0.0.1", REDIS_PORT = "6379" }
    outbound = ["tcp://127.0.0.1:5432", "tcp://127.0.0.1:6379"]

Inside the component, CPython has no `ssl` module, so pg8000 is told not to try TLS
(`ssl_context=False`; its default, `None`, means "try TLS" and fails with "SSL required but
ssl module not available"). And a component holds only the modules that were imported
while it was built (componentize-py runs the module then): what a library imports only at
request time is imported here, and the page's template is compiled here. The same file runs
natively too (`cheroot db_app:app`).
"""

import os

# Imported lazily by the libraries, at request time: bundle them.
import _strptime  # noqa: F401  datetime.strptime(), by pg8000 for every timestamp it reads
import jinja2.debug  # noqa: F401  Jinja2, to report an error raised while rendering
import pg8000.native
import redis
from flask import Flask, g, jsonify, redirect, render_template, request, url_for

app = Flask(__name__)

# Compiled at import time (so at build time): Jinja2's compiler needs modules, such as the
# `unicode_escape` codec, that a request would otherwise look for in vain.
PAGE = app.jinja_env.from_string("""<!doctype html>
<title>Notes</title>
<h1>Notes</h1>
<p>This page was shown {{ visits }} time{{ "" if visits == 1 else "s" }} (a Redis counter).</p>
<ul>
{% for note in notes %}  <li>#{{ note.id }} {{ note.text }} <small>{{ note.created }}</small></li>
{% else %}  <li>No notes yet.</li>
{% endfor %}</ul>
<form method="post" action="{{ url_for('add_note') }}">
  <input name="text" required> <button>Add a note</button>
</form>
""")


def _setting(name, default):
    # Read per request, never at import: the module is imported when the component is
    # built, not where it runs.
    return os.environ.get(name, default)


def db():
    """This request's PostgreSQL connection (opened on first use, closed at teardown)."""
    if "db" not in g:
        conn = pg8000.native.Connection(
            _setting("PGUSER", "postgres"),
            host=_setting("PGHOST", "127.0.0.1"),
            port=int(_setting("PGPORT", "5432")),
            database=_setting("PGDATABASE", "postgres"),
            password=_setting("PGPASSWORD", None),
            ssl_context=False,  # no TLS inside the component: don't try it
            timeout=10,
        )
        g.db = conn  # closed at teardown, even if what follows fails
        # Checked first: CREATE TABLE IF NOT EXISTS needs the CREATE privilege on the
        # schema even when the table is there, which an application's role may not have.
        if not conn.run("SELECT to_regclass('notes') IS NOT NULL")[0][0]:
            conn.run(
                "CREATE TABLE IF NOT EXISTS notes ("
                " id serial PRIMARY KEY,"
                " text text NOT NULL,"
                " created timestamptz NOT NULL DEFAULT now())"
            )
    return g.db


def cache():
    """This request's Redis client (its connection is closed at teardown)."""
    if "cache" not in g:
        g.cache = redis.Redis(
            host=_setting("REDIS_HOST", "127.0.0.1"),
            port=int(_setting("REDIS_PORT", "6379")),
            socket_connect_timeout=10,
            socket_timeout=10,
        )
    return g.cache


@app.teardown_appcontext
def close_connections(_exc):
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()
    client = g.pop("cache", None)
    if client is not None:
        client.close()


def notes():
    rows = db().run("SELECT id, text, created FROM notes ORDER BY id")
    return [
        {"id": id_, "text": text, "created": created.isoformat()}
        for id_, text, created in rows
    ]


@app.get("/")
def index():
    visits = cache().incr("db_app:visits")
    return render_template(PAGE, visits=visits, notes=notes())


@app.post("/notes")
def add_note():
    text = request.form.get("text", "").strip()
    if not text:
        return "form field `text` is required\n", 400
    (row,) = db().run(
        "INSERT INTO notes (text) VALUES (:text) RETURNING id", text=text
    )
    return redirect(url_for("index", added=row[0]), code=303)


@app.get("/notes.json")
def notes_json():
    return jsonify(notes=notes())
