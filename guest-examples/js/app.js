// A JavaScript guest for cheroot-wasm: a standard `wasi:http/proxy` component
// (exports wasi:http/incoming-handler@0.2.x), built by ComponentizeJS (see
// build.sh). ComponentizeJS embeds the StarlingMonkey (SpiderMonkey) engine and
// wires the component's incoming-handler export to the service-worker style
// `fetch` event, so this file is plain web-platform JS: Request, Response,
// Headers, ReadableStream, TextEncoder, setTimeout.
//
// Paths are relative to the route's mount point: cheroot-wasm passes the rest
// of the path in the `cheroot-path-info` header (request.url keeps the full
// path, as the client sent it); without it (under `wasmtime serve`), the whole
// path counts.
//
// Routes:
//   GET  /         -> 200 text/plain "Hello from JavaScript!\n"
//   ANY  /echo     -> 200, the request body echoed back (read fully), with the
//                     request's content-type (default application/octet-stream)
//   GET  /stream   -> 200, body streamed as 5 separate chunks "chunk N\n"
//   GET  /headers  -> 200 application/json {method, url, headers}, plus
//                     response header `x-example: js`
//   GET  /trap     -> the handler throws an uncaught error (see handleTrap);
//                     /trap?sync throws from the fetch listener itself, before
//                     respondWith
//   anything else  -> 404 text/plain "not found\n"
//
// Every response from /headers also carries `x-instance-requests: N`, the number
// of requests this instance has handled (module state): 1 on a host that makes a
// fresh instance per request (wasmtime serve), more if the host reuses instances.

const encoder = new TextEncoder();

// Requests seen by this instance (module state survives only within an instance).
let requestsHandled = 0;

function text(body, status = 200, extraHeaders = {}) {
  return new Response(body, {
    status,
    headers: { 'content-type': 'text/plain', ...extraHeaders },
  });
}

async function handleEcho(request) {
  // Read the whole request body (a stream over wasi:http incoming-body) into
  // memory, then send it back. Fine for a few MB; a pure pass-through would be
  // `new Response(request.body, ...)`.
  const body = await request.arrayBuffer();
  const contentType =
    request.headers.get('content-type') || 'application/octet-stream';
  return new Response(body, {
    status: 200,
    headers: { 'content-type': contentType },
  });
}

function handleStream() {
  // Each chunk is enqueued separately, with a short timer in between so the
  // engine flushes them as separate writes to the outgoing-body stream. No
  // content-length is set, so the host decides the framing (chunked on HTTP/1.1).
  const stream = new ReadableStream({
    async start(controller) {
      for (let i = 0; i < 5; i++) {
        controller.enqueue(encoder.encode(`chunk ${i}\n`));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      controller.close();
    },
  });
  return new Response(stream, {
    status: 200,
    headers: { 'content-type': 'text/plain' },
  });
}

function handleHeaders(request) {
  const headers = {};
  for (const [name, value] of request.headers) {
    // Headers iteration yields lower-cased names, repeated values joined by ", ".
    headers[name] = value;
  }
  const body = JSON.stringify({
    method: request.method,
    url: request.url,
    headers,
  });
  return new Response(body + '\n', {
    status: 200,
    headers: {
      'content-type': 'application/json',
      'x-example': 'js',
      'x-instance-requests': String(requestsHandled),
    },
  });
}

function handleTrap() {
  // Deliberately uncaught. `handle` is async, so this rejects the promise given
  // to event.respondWith(). What componentize-js 0.23.0 (StarlingMonkey) does
  // then, observed under `wasmtime serve` 49: it prints
  //   Error while running request handler: deliberate uncaught error from /trap
  //   Stack: handleTrap@app.js:... handle@app.js:... (to the guest's stderr)
  // and answers 500 Internal Server Error with an empty body itself
  // (FetchEvent::respondWithError). The component does NOT trap: the host sees a
  // normal 500 response and handle() returning normally.
  // For a throw from the listener itself before respondWith, see /trap?sync.
  throw new Error('deliberate uncaught error from /trap');
}

// The path below the route's mount point.
function pathInfo(request) {
  const below = request.headers.get('cheroot-path-info');
  const path = below ?? new URL(request.url).pathname;
  return path === '' ? '/' : path;
}

async function handle(request) {
  switch (pathInfo(request)) {
    case '/':
      if (request.method === 'GET' || request.method === 'HEAD') {
        return text('Hello from JavaScript!\n');
      }
      return text('method not allowed\n', 405, { allow: 'GET, HEAD' });
    case '/echo':
      return handleEcho(request);
    case '/stream':
      return handleStream();
    case '/headers':
      return handleHeaders(request);
    case '/trap':
      return handleTrap();
    default:
      return text('not found\n', 404);
  }
}

addEventListener('fetch', (event) => {
  requestsHandled += 1;
  const url = new URL(event.request.url);
  if (pathInfo(event.request) === '/trap' && url.searchParams.has('sync')) {
    // Deliberately uncaught, thrown before respondWith. Observed with
    // componentize-js 0.23.0 under `wasmtime serve` 49: stderr gets
    //   Exception while Exception in event listener for fetch
    //   app.js:...: Error: deliberate uncaught error from /trap?sync (listener)
    // and the engine answers 500, content-type text/plain, body
    //   "ERROR: no fetch-event handler triggered, was one registered?"
    // Again no trap: the host sees a normal 500 response.
    throw new Error('deliberate uncaught error from /trap?sync (listener)');
  }
  event.respondWith(handle(event.request));
});
