"""Run any PEP 3333 (WSGI) application as a cheroot-wasm component.

This package is the guest side of wit/wsgi.wit for Python: it exports the
``cheroot:wsgi/application`` interface around an ordinary WSGI callable, unmodified.
``cheroot-wasm build-python MODULE:APP -o app.wasm`` generates the entry module that
componentize-py needs::

    import cheroot_wsgi
    from MODULE import APP
    Application = cheroot_wsgi.exports(APP)

What the application sees is what PEP 3333 promises:

* ``environ`` is a real ``dict``: CGI keys as native strings, ``wsgi.version`` ``(1, 0)``,
  the ``wsgi.multithread``/``multiprocess``/``run_once``/``input_terminated`` flags as
  booleans, ``wsgi.input`` a file-like object (``read``, ``readline``, ``readlines``,
  iteration) streamed from the client as it is read, ``wsgi.errors`` ``sys.stderr`` (which
  the server logs, line by line, under the route).
* ``start_response(status, headers, exc_info=None)`` returns ``write``; an invalid status or
  header raises ``ValueError``; a second call needs ``exc_info``, and once the headers are
  sent it re-raises ``exc_info`` as PEP 3333 requires.
* The returned iterable is pulled chunk by chunk as the client reads (generators that call
  ``start_response`` lazily work), and its ``close()`` is called when the server is done
  with it, whatever happened. A list or tuple of one chunk, or of chunks adding up to 1 MiB
  at most, goes back to the server whole, with the call to the application.
* An exception from the application is reported to the server with its traceback: the
  client gets a 500 (or the connection is closed if the response had started), and the
  traceback goes to the server log.
* A module the component does not hold (it was not imported when the component was built)
  is named in one line on ``sys.stderr``, with how to add it: ``--include``.
"""

import importlib
import os
import sys
import traceback

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.exports import application as _application
try:
    # build-python's world (`python-app`) also imports wasi:http, whose `types` takes the name.
    from wit_world.imports import cheroot_wsgi_types as _types
except ImportError:
    from wit_world.imports import types as _types

__all__ = ["exports", "WsgiInput"]

#: environ keys whose value crosses the WIT boundary as "true"/"false".
_FLAGS = ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated")

#: The most one host ``read`` returns; a larger ``read(n)`` loops.
_CHUNK = 65536

#: The most bytes a list's chunks are joined into for the reply; above, they go one by one.
_JOIN_MAX = 1 << 20


def _describe(error):
    """A WIT ``error`` variant as text."""
    name = type(error).__name__.removeprefix("Error_")
    value = getattr(error, "value", None)
    return f"{name}: {value}" if value is not None else name


class WsgiInput:
    """``wsgi.input``: the request body, read from the client as the application asks."""

    def __init__(self, handle):
        self._handle = handle
        self._done = False

    def _call(self, method, size):
        if self._done:
            return b""
        try:
            data = method(size)
        except Err as e:
            raise OSError(f"wsgi.input: {_describe(e.value)}") from None
        if not data and method == self._handle.read:
            self._done = True
        return data

    def read(self, size=-1):
        """Up to ``size`` bytes (all that is left when ``size`` is negative or None)."""
        if size is not None and size >= 0:
            out = bytearray()
            while len(out) < size:
                chunk = self._call(self._handle.read, min(size - len(out), _CHUNK))
                if not chunk:
                    break
                out += chunk
            return bytes(out)
        out = bytearray()
        while chunk := self._call(self._handle.read, _CHUNK):
            out += chunk
        return bytes(out)

    def readline(self, size=-1):
        """One line, up to and including ``\\n`` (at most ``size`` bytes when given)."""
        limit = size if size is not None and size >= 0 else None
        out = bytearray()
        while limit is None or len(out) < limit:
            want = _CHUNK if limit is None else min(limit - len(out), _CHUNK)
            chunk = self._call(self._handle.read_line, want)
            if not chunk:
                break
            out += chunk
            if out.endswith(b"\n"):
                break
        return bytes(out)

    def readlines(self, hint=-1):
        """Lines until the end of the body (or until ``hint`` bytes were read)."""
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        while line := self.readline():
            yield line

    def close(self):
        """Nothing to release: the server owns the connection."""


def _environ(environ):
    # `vars` is "KEY\0value\0..." (wit/wsgi.wit): one split, then pairs.
    parts = environ.vars.split("\0")
    env = dict(zip(parts[0:-1:2], parts[1::2]))
    env["PATH_INFO"] = environ.path_info
    env["wsgi.version"] = (1, 0)
    for key in _FLAGS:
        env[key] = env.get(key) == "true"
    env["wsgi.input"] = WsgiInput(environ.input)
    env["wsgi.errors"] = sys.stderr
    return env


def _start_response(handle):
    """PEP 3333's ``start_response`` over the host's ``start-response`` resource."""

    def write(data):
        try:
            handle.write(bytes(data))
        except Err as e:
            raise OSError(f"write: {_describe(e.value)}") from None

    def start_response(status, headers, exc_info=None):
        text = None
        if exc_info:
            text = "".join(traceback.format_exception(*exc_info))
        try:
            handle.call(status, [(str(k), str(v)) for k, v in headers], text)
        except Err as e:
            if exc_info and isinstance(e.value, _types.Error_AlreadyStarted):
                # PEP 3333: headers already sent, so re-raise the application's exception.
                raise exc_info[1].with_traceback(exc_info[2])
            if isinstance(e.value, _types.Error_AlreadyStarted):
                raise AssertionError("start_response called a second time without exc_info") from None
            raise ValueError(f"start_response: {_describe(e.value)}") from None
        finally:
            exc_info = None
        return write

    return start_response


def _failure():
    """The current exception as the text the server logs."""
    return "".join(traceback.format_exc()).rstrip()


class Body(_application.Body):
    """The application's iterable, pulled one chunk per ``next``; dropped = ``close()``."""

    def __init__(self, iterable, handles):
        self._iterable = iterable
        self._iterator = None
        # The request's handles (input, start-response) live as long as a lazy body may
        # use them, and are released when the server drops the body.
        self._handles = handles

    def next(self):
        try:
            if self._iterator is None:
                self._iterator = iter(self._iterable)
            while True:
                chunk = _checked(next(self._iterator))
                if chunk:
                    return bytes(chunk)
        except StopIteration:
            self._finish()
            return None
        except BaseException as e:
            failure = _failure()
            self._finish()
            _note_missing_module(e)
            raise Err(failure) from None

    def _finish(self):
        """WSGI's ``close()`` and the release of the request's handles, once: when the
        iteration ends (the host drops the body right after, if it has it, and
        componentize-py does not run ``__del__`` for a dropped export), or when the body is
        collected."""
        if self._handles is None:
            return
        handles, self._handles = self._handles, None
        close = getattr(self._iterable, "close", None)
        if close is not None:
            try:
                close()
            except BaseException:
                print(f"close() of the response iterable failed:\n{_failure()}", file=sys.stderr)
        _release(handles)

    def __del__(self):
        self._finish()


def _release(handles):
    """Gives the request's handles back to the host now. Frameworks keep the environ in
    reference cycles (a request object and its environ), which Python frees only when its
    cycle collector runs: without this, a warm instance would hold the handles of hundreds
    of past requests, past the host's bound on live resources."""
    for handle in handles:
        try:
            handle.__exit__(None, None, None)
        except BaseException:
            pass


def _checked(chunk):
    """``chunk``, if it is bytes-like: PEP 3333 bodies are bytes."""
    if not isinstance(chunk, (bytes, bytearray, memoryview)):
        raise TypeError(f"WSGI applications must yield bytes, not {type(chunk).__name__}")
    return chunk


def _whole(sequence, handles):
    """The reply for a list or tuple, whole (neither has a ``close()``): its one chunk, or
    its chunks joined when they are small. ``None`` for large chunks, which go one by one
    (joining them would need their size again in the instance's memory)."""
    total = 0
    for chunk in sequence:
        total += memoryview(_checked(chunk)).nbytes
    if len(sequence) == 1:
        ready = bytes(sequence[0])
    elif total <= _JOIN_MAX:
        ready = b"".join(sequence)
    else:
        return None
    _release(handles)
    return _application.Reply(ready, None)


def exports(app):
    """The ``Application`` export class for WSGI callable ``app``."""

    class Application(_exports.Application):
        def handle(self, environ, start_response):
            handles = (environ.input, start_response)
            try:
                iterable = app(_environ(environ), _start_response(start_response))
                if type(iterable) in (list, tuple):
                    reply = _whole(iterable, handles)
                    if reply is not None:
                        return reply
            except BaseException as e:
                _release(handles)
                _note_missing_module(e)
                raise Err(_failure()) from None
            # Any other iterable may wait between chunks (a generator that sleeps, or reads
            # the request body): its first chunk now, as the server would pull it at once,
            # and the rest (of a large list, too) pulled chunk by chunk.
            body = Body(iterable, handles)
            first = body.next()
            if first is None:
                return _application.Reply(b"", None)
            return _application.Reply(first, body)

    return Application


#: Names known, when the component was built, to be missing (absent, unavailable in WASI, or
#: failing to import): build-python's warnings told about those already.
_known_missing = set()
#: Modules already reported, so that each is named once per instance.
_reported = set()


def _report_missing(name):
    """One line on stderr (the server's log for the route) about module ``name``."""
    if name in _reported:
        return
    _reported.add(name)
    if name in _known_missing:
        why = "it was not found, or failed to import, when the component was built"
    else:
        why = f"rebuild with: cheroot-wasm build-python ... --include {name}"
    print(f"cheroot-wasm: module {name!r} is not in this component: {why}", file=sys.stderr, flush=True)


def _note_missing_module(error):
    """Reports the module a ``ModuleNotFoundError`` (raised or chained) names."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ModuleNotFoundError) and error.name:
            _report_missing(error.name)
            return
        error = error.__cause__ or error.__context__


def _probing():
    """Whether ``importlib.util.find_spec`` is asking: a probe (is there a module ``x``?),
    which expects ``None``, not an import that fails."""
    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "find_spec" and code.co_filename.endswith(os.path.join("importlib", "util.py")):
            return True
        frame = frame.f_back
    return False


class _MissingModules:
    """Last on ``sys.meta_path``, so asked only when no other finder has the module: in a
    component, a module that was not imported at build time. Frameworks catch the
    ``ImportError`` that follows and answer 500 (Django's ``cannot import name 'urls' from
    'django.conf'``), so the name is logged here, where it is known."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in _known_missing and not _probing():
            _report_missing(name)
        return None


class _offline:
    """Build time, around everything the entry module imports: the network does not exist.

    componentize-py snapshots the interpreter once the entry module has run, and the guest's
    libc keeps the network handle it got on first use in memory: a module that probes the
    network while it is imported (urllib3 binds a socket to ``::1`` to learn whether IPv6
    works) would leave the build's handle in the snapshot, and every instance would trap on
    it at its first connection. So while the application and its modules are imported,
    creating a socket and resolving a name raise ``OSError``, as on a machine without a
    network; afterwards, everything is as it was."""

    _NAMES = ("gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")

    def __enter__(self):
        import _socket
        import socket

        def refuse(*args, **kwargs):
            raise OSError("no network while the component is built")

        self._saved = [(socket.socket, "__init__", socket.socket.__init__)]
        self._saved += [(_socket, "getaddrinfo", _socket.getaddrinfo)]
        self._saved += [(socket, name, getattr(socket, name)) for name in self._NAMES]
        for owner, name, _ in self._saved:
            setattr(owner, name, refuse)
        return self

    def __exit__(self, *exc):
        for owner, name, value in self._saved:
            setattr(owner, name, value)
        return False


def _import_ahead(names, report, absent=()):
    """Build time, from the entry module build-python generates: imports ``names`` so that
    the component holds them, each on its own (one failing does not stop the others), writes
    those that failed to ``report`` beside the entry module (``name<TAB>exception`` lines,
    which build-python turns into warnings), and has missing modules reported at run time."""
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException as e:
            failed.append(name)
            text = f"{type(e).__name__}: {e}".replace("\n", " ").replace("\t", " ")
            with open(os.path.normpath(os.path.join(os.path.dirname(__file__), "..", report)), "a") as f:
                f.write(f"{name}\t{text}\n")
    _known_missing.update(absent, failed)
    if not any(isinstance(f, _MissingModules) for f in sys.meta_path):
        sys.meta_path.append(_MissingModules())
