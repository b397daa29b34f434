"""A plain WSGI application whose views import modules only when a request needs them, as
real applications do: build-python's import scan finds them, so the component holds them.

    GET /json      `import json` inside the view
    GET /decimal   `importlib.import_module("decimal")`
    GET /missing   imports a module that exists nowhere: a 500, and one line in the log
                   naming the module
    GET /resolve   imports ipv6_probe (which probes the network while it is imported, as
                   urllib3 does), then resolves an address
"""

import importlib


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/json":
        import json

        body = json.dumps({"lazy": True}, sort_keys=True)
    elif path == "/decimal":
        decimal = importlib.import_module("decimal")
        body = str(decimal.Decimal("0.1") + decimal.Decimal("0.2"))
    elif path == "/resolve":
        import socket

        import ipv6_probe  # noqa: F401

        body = socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)[0][4][0]
    elif path == "/missing":
        import cheroot_wasm_no_such_module  # noqa: F401

        body = "unreachable"
    else:
        body = "lazy imports\n"
    data = (body + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
