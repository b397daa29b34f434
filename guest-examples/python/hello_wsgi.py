"""A plain PEP 3333 application, no framework: what cheroot-wasm runs, unmodified.

Serve it natively with cheroot (``cheroot hello_wsgi:application``) or build it into a
component with ``cheroot-wasm build-python hello_wsgi:application -o hello_wsgi.wasm``.
"""

import gc


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/upload":
        body = environ["wsgi.input"].read()
        text = f"{len(body)} bytes, {len(body.splitlines())} lines\n".encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))])
        return [text]
    if path == "/lines":
        count = sum(1 for _ in environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{count} lines\n".encode()]
    if path == "/generator":
        def chunks():
            # start_response on the first next(), as lazy frameworks do.
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            for i in range(3):
                yield f"chunk {i}\n".encode()
        return chunks()
    if path == "/list":
        # ?N,SIZE: a list of N chunks of SIZE bytes, A's, then B's...: returned to the server
        # whole (joined) when small, chunk by chunk when large.
        n, size = (int(x) for x in environ["QUERY_STRING"].split(","))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [bytes([65 + i % 26]) * size for i in range(n)]
    if path == "/raise":
        raise RuntimeError("raised on purpose")
    if path == "/gc-off":
        # As some production deployments do: no cycle collector, only reference counts.
        gc.disable()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"cycle collector off\n"]
    keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL")
    lines = [f"{k}={environ.get(k, '')}" for k in keys]
    lines.append(f"wsgi.version={environ['wsgi.version']!r}")
    lines.append(f"wsgi.input_terminated={environ.get('wsgi.input_terminated')!r}")
    text = ("\n".join(lines) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(text)))])
    return [text]
