"""A WSGI application that keeps its data in SQLite, in the route's data directory.

The route grants it one (routes.toml: ``data = { "/data" = "var/notes" }``); natively,
``NOTES_DB`` names the database file. No framework, only the standard library:

- ``POST /notes`` stores the request body as a note and answers ``201`` with its id;
- ``GET /notes`` answers how many notes there are, and the last one;
- ``GET /lock-probe`` lists the data directory (a directory's name ends in ``/``) while
  the database is locked for writing, which shows how this SQLite locks a file;
- ``GET /hold`` locks the database for writing and sleeps (until the route's timeout
  kills it, or the server is killed): what a crash mid-transaction leaves behind.
"""

import json
import os
import sqlite3
import time

DATABASE = os.environ.get("NOTES_DB", "/data/notes.db")


def connect():
    # Opened per request: nothing is touched at build time, when /data does not exist.
    db = sqlite3.connect(DATABASE, timeout=30)
    db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return db


def answer(start_response, status, value):
    body = json.dumps(value).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    method = environ["REQUEST_METHOD"]
    if path == "/notes" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        text = environ["wsgi.input"].read(length).decode()
        db = connect()
        try:
            with db:
                note = db.execute("INSERT INTO notes (body) VALUES (?)", (text,)).lastrowid
        finally:
            db.close()
        return answer(start_response, "201 Created", {"id": note})
    if path == "/notes":
        db = connect()
        try:
            count, last = db.execute("SELECT COUNT(*), MAX(id) FROM notes").fetchone()
            body = db.execute("SELECT body FROM notes WHERE id = ?", (last,)).fetchone()
        finally:
            db.close()
        return answer(start_response, "200 OK", {"count": count, "last": body and body[0]})
    if path == "/lock-probe":
        db = connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            folder = os.path.dirname(DATABASE)
            listing = sorted(n + "/" * os.path.isdir(os.path.join(folder, n)) for n in os.listdir(folder))
            db.rollback()
        finally:
            db.close()
        return answer(start_response, "200 OK", {"while-locked": listing})
    if path == "/hold":
        db = connect()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO notes (body) VALUES ('never committed')")
        time.sleep(3600)
    return answer(start_response, "404 Not Found", {"error": "no such page"})
