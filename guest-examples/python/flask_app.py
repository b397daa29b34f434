"""An ordinary Flask application, run unmodified by cheroot (natively) and by cheroot-wasm
(sandboxed): routes, a query string, form POST, JSON in and out, cookies, a redirect, an
error page and a streamed generator response.

    cheroot --bind 127.0.0.1:8000 flask_app:app                # natively
    cheroot-wasm build-python flask_app:app -o flask_app.wasm  # as a component
"""

from flask import Flask, Response, jsonify, redirect, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask!\n"


@app.get("/greet")
def greet():
    name = request.args.get("name", "world")
    return f"Hello, {name}!\n"


@app.post("/form")
def form():
    fields = ", ".join(f"{k}={v}" for k, v in sorted(request.form.items()))
    return f"form: {fields}\n"


@app.post("/json")
def json_echo():
    data = request.get_json(force=True)
    return jsonify(received=data, keys=sorted(data) if isinstance(data, dict) else None)


@app.get("/cookie")
def cookie():
    seen = request.cookies.get("visits", "0")
    response = Response(f"visits before: {seen}\n", mimetype="text/plain")
    response.set_cookie("visits", str(int(seen) + 1), httponly=True)
    return response


@app.get("/old")
def old():
    return redirect("/greet?name=redirected", code=302)


@app.get("/stream")
def stream():
    def lines():
        for i in range(5):
            yield f"line {i}\n"

    return Response(stream_with_context(lines()), mimetype="text/plain")


@app.get("/teapot")
def teapot():
    return "short and stout\n", 418, {"X-Tea": "earl grey"}


@app.get("/boom")
def boom():
    raise RuntimeError("boom")
