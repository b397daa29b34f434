"""A WSGI application that calls other web services: `GET /?url=URL` fetches URL with
niquests and answers with the status and the start of the body (or the error).

Built by `cheroot-wasm build-python`, the component imports wasi:http's outgoing handler,
and niquests (>= 3.21) sends its requests through it: the host does DNS, TCP and TLS, for
the origins the route's `outbound` grants (`"https://api.example.com"`), and nothing else.

    cheroot-wasm build-python fetch_app:application --path guest-examples/python \
        -r guest-examples/python/fetch-requirements.txt -o fetch_app.wasm
"""

from urllib.parse import parse_qs

import niquests


def application(environ, start_response):
    url = parse_qs(environ.get("QUERY_STRING", "")).get("url", [""])[0]
    try:
        response = niquests.get(url, timeout=10)
        text = f"{response.status_code} {response.text[:200]}"
    except Exception as error:  # noqa: BLE001  the example reports every failure
        text = f"failed: {type(error).__name__}: {error}"
    body = (text + "\n").encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
