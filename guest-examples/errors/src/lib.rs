//! One misbehaviour per path, to show (and test) what the server does when an application
//! breaks the WSGI contract. Mounted at `/errors`, `GET /errors/<case>`:
//!
//! | case | what the application does |
//! |---|---|
//! | `handle-err` | `handle` returns an error (an uncaught exception) |
//! | `trap`, `trap-in-next` | panics in `handle` / in the first `next` (a wasm trap) |
//! | `no-start` | ends its body without ever calling `start_response` |
//! | `no-start-chunk`, `no-start-reply` | yields a chunk / returns one with `handle` without calling `start_response` |
//! | `bad-status`, `bad-status-1xx`, `bad-status-999` | status `20 OK`, `101 ...`, `999 Nope` |
//! | `crlf-header`, `bad-header-name` | a value with CR LF, a name with a space |
//! | `hop-by-hop`, `hop-by-hop-te` | sets `Connection` / `Transfer-Encoding` |
//! | `too-long`, `too-long-write`, `too-long-reply` | more bytes than its Content-Length (in one chunk / via `write` / in `handle`'s reply) |
//! | `reply-then-rest` | returns a body with `handle` and the rest of its iterable, which yields two more chunks |
//! | `too-short` | fewer bytes than its Content-Length |
//! | `twice` | calls `start_response` twice without exc-info |
//! | `exc-info-replace` | replaces status and headers with exc-info before anything was sent |
//! | `exc-info-after-send` | tries exc-info after sending, gets `already-started`, re-raises |
//! | `err-after-headers` | yields `partial`, then raises |
//! | `write-before-start` | `write` before `start_response` |
//! | `sleep/<ms>` | sleeps, then answers 200 (to meet a route's `timeout`) |
//! | `loop` | spins forever without yielding (only the host's epoch interruption stops it) |
//! | `alloc/<MiB>` | allocates and touches that much memory, then answers 200 (to meet a route's `memory`) |
//! | `many-headers/<n>` | a response with that many headers (the host's cap is 256) |
//! | `alias-headers/<MiB>` | 200 headers whose values are all the same block of that size: a few bytes in the guest, 200 copies in a host that copied them before checking |
//! | `forge-log` | exc-info, then an exception, whose text holds newlines and a fake server log line |
//! | `huge-exc-info/<MiB>` | `start_response` with an exc-info that large, then 200 |
//! | `empty`, `reason`, `latin1`, `status/<code>` | well-formed corner cases: no body, a custom reason phrase, a Latin-1 header, any status with a body |
//!
//! Its bodies are iterables pulled with `next` (the rest of `handle`'s reply), but for the
//! `-reply` cases, whose body comes with `handle` itself.
//!
//! Like a framework, it turns a host error into a 500 page with `X-Wsgi-Error: <variant>`,
//! so clients (and tests) see which error the host returned.

wit_bindgen::generate!({ world: "app", path: "../../wit" });

use std::cell::RefCell;

use cheroot::wsgi::types::{Environ, Error, StartResponse};
use exports::cheroot::wsgi::application::{Body, Guest, GuestBody, Reply};

struct Errors;

/// What the iterable does.
enum Plan {
    /// Yields these chunks, then ends.
    Chunks(RefCell<Vec<Vec<u8>>>),
    /// Panics on the first `next`.
    Trap,
    /// Yields these chunks, then raises.
    FailAfter(RefCell<Vec<Vec<u8>>>),
}

/// The response iterable.
struct Iterable {
    plan: Plan,
    _start_response: Option<StartResponse>,
}

impl GuestBody for Iterable {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        match &self.plan {
            Plan::Chunks(chunks) => Ok(pop_front(chunks)),
            Plan::Trap => panic!("guest panicked on purpose in next"),
            Plan::FailAfter(chunks) => pop_front(chunks)
                .map(Some)
                .ok_or_else(|| "boom in next".to_string()),
        }
    }
}

fn pop_front(chunks: &RefCell<Vec<Vec<u8>>>) -> Option<Vec<u8>> {
    let mut chunks = chunks.borrow_mut();
    (!chunks.is_empty()).then(|| chunks.remove(0))
}

fn body(chunks: &[&[u8]], start_response: Option<StartResponse>) -> Reply {
    let chunks = chunks.iter().map(|c| c.to_vec()).collect();
    iterable(Iterable {
        plan: Plan::Chunks(RefCell::new(chunks)),
        _start_response: start_response,
    })
}

/// A reply whose whole body is the iterable, pulled with `next`.
fn iterable(iterable: Iterable) -> Reply {
    Reply {
        ready: Vec::new(),
        rest: Some(Body::new(iterable)),
    }
}

/// A reply whose whole body comes with it.
fn whole(body: &[u8]) -> Reply {
    Reply {
        ready: body.to_vec(),
        rest: None,
    }
}

fn text_plain() -> [(String, String); 1] {
    [h("Content-Type", "text/plain")]
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

fn kebab(error: &Error) -> &'static str {
    match error {
        Error::AlreadyStarted => "already-started",
        Error::NotStarted => "not-started",
        Error::InvalidStatus(_) => "invalid-status",
        Error::InvalidHeader(_) => "invalid-header",
        Error::BodyExceedsContentLength => "body-exceeds-content-length",
        Error::RequestBodyTooLarge => "request-body-too-large",
        Error::Disconnected => "disconnected",
    }
}

/// What a framework does with an exception: an error page, if it still can.
fn error_page(start_response: StartResponse, error: Error) -> Result<Reply, String> {
    let text = format!("{error}\n");
    let headers = [
        h("Content-Type", "text/plain"),
        h("X-Wsgi-Error", kebab(&error)),
    ];
    start_response
        .call("500 Internal Server Error", &headers, Some(&text))
        .map_err(|e| format!("{error}; then {e}"))?;
    Ok(body(&[text.as_bytes()], Some(start_response)))
}

/// `start_response` with the given status and headers, or the error page.
fn respond(
    start_response: StartResponse,
    status: &str,
    headers: &[(String, String)],
    chunks: &[&[u8]],
) -> Result<Reply, String> {
    match start_response.call(status, headers, None) {
        Ok(()) => Ok(body(chunks, Some(start_response))),
        Err(e) => error_page(start_response, e),
    }
}

impl Guest for Errors {
    type Body = Iterable;

    fn handle(environ: Environ, start_response: StartResponse) -> Result<Reply, String> {
        let path = environ.path_info;
        let text = [h("Content-Type", "text/plain")];
        let sized = |n: usize| {
            [
                h("Content-Type", "text/plain"),
                h("Content-Length", &n.to_string()),
            ]
        };
        match path.as_str() {
            "/handle-err" => Err("boom from handle".into()),
            "/trap" => panic!("guest panicked on purpose"),
            "/trap-in-next" => {
                start_response
                    .call("200 OK", &text, None)
                    .map_err(|e| e.to_string())?;
                Ok(iterable(Iterable {
                    plan: Plan::Trap,
                    _start_response: Some(start_response),
                }))
            }
            "/no-start" => Ok(body(&[], None)),
            "/no-start-chunk" => Ok(body(&[b"x"], None)),
            "/no-start-reply" => Ok(whole(b"x")),
            "/too-long-reply" => {
                start_response
                    .call("200 OK", &sized(5), None)
                    .map_err(|e| e.to_string())?;
                Ok(whole(b"abcdefg"))
            }
            "/reply-then-rest" => {
                start_response
                    .call("200 OK", &text, None)
                    .map_err(|e| e.to_string())?;
                let rest = RefCell::new(vec![b"three ".to_vec(), b"four\n".to_vec()]);
                Ok(Reply {
                    ready: b"one two ".to_vec(),
                    rest: Some(Body::new(Iterable {
                        plan: Plan::Chunks(rest),
                        _start_response: Some(start_response),
                    })),
                })
            }
            "/bad-status" => respond(start_response, "20 OK", &text, &[b"unreachable"]),
            "/bad-status-1xx" => respond(
                start_response,
                "101 Switching Protocols",
                &text,
                &[b"unreachable"],
            ),
            "/bad-status-999" => respond(start_response, "999 Nope", &text, &[b"unreachable"]),
            "/crlf-header" => respond(
                start_response,
                "200 OK",
                &[h("X-Bad", "a\r\nInjected: 1")],
                &[b"unreachable"],
            ),
            "/bad-header-name" => respond(
                start_response,
                "200 OK",
                &[h("Bad Name", "x")],
                &[b"unreachable"],
            ),
            "/hop-by-hop" => respond(
                start_response,
                "200 OK",
                &[h("Connection", "close")],
                &[b"unreachable"],
            ),
            "/hop-by-hop-te" => respond(
                start_response,
                "200 OK",
                &[h("Transfer-Encoding", "chunked")],
                &[b"unreachable"],
            ),
            "/too-long" => respond(start_response, "200 OK", &sized(5), &[b"I too have"]),
            "/too-long-write" => {
                start_response
                    .call("200 OK", &sized(5), None)
                    .map_err(|e| e.to_string())?;
                start_response.write(b"abc").map_err(|e| e.to_string())?;
                match start_response.write(b"defg") {
                    Err(Error::BodyExceedsContentLength) => {
                        Err("body-exceeds-content-length".into())
                    }
                    other => Err(format!(
                        "expected body-exceeds-content-length, got {other:?}"
                    )),
                }
            }
            "/too-short" => respond(start_response, "200 OK", &sized(10), &[b"abc"]),
            "/twice" => {
                start_response
                    .call("200 OK", &text, None)
                    .map_err(|e| e.to_string())?;
                match start_response.call("200 OK", &text, None) {
                    Ok(()) => Ok(body(&[b"second call accepted"], Some(start_response))),
                    Err(e) => error_page(start_response, e),
                }
            }
            "/exc-info-replace" => {
                start_response
                    .call("200 OK", &[h("X-First", "1")], None)
                    .map_err(|e| e.to_string())?;
                let replacement = [h("X-Second", "2"), h("Content-Type", "text/plain")];
                start_response
                    .call(
                        "503 Service Unavailable",
                        &replacement,
                        Some("replaced on purpose"),
                    )
                    .map_err(|e| e.to_string())?;
                Ok(body(&[b"replaced"], Some(start_response)))
            }
            "/exc-info-after-send" => {
                start_response
                    .call("200 OK", &text, None)
                    .map_err(|e| e.to_string())?;
                start_response
                    .write(b"partial")
                    .map_err(|e| e.to_string())?;
                match start_response.call("500 Internal Server Error", &[], Some("late")) {
                    Err(Error::AlreadyStarted) => Err("already-started after send".into()),
                    other => Err(format!("expected already-started, got {other:?}")),
                }
            }
            "/err-after-headers" => {
                start_response
                    .call("200 OK", &text, None)
                    .map_err(|e| e.to_string())?;
                let chunks = RefCell::new(vec![b"partial".to_vec()]);
                Ok(iterable(Iterable {
                    plan: Plan::FailAfter(chunks),
                    _start_response: Some(start_response),
                }))
            }
            "/write-before-start" => match start_response.write(b"x") {
                Err(e) => error_page(start_response, e),
                Ok(()) => Err("write before start_response was accepted".into()),
            },
            "/empty" => respond(start_response, "200 OK", &[], &[]),
            "/reason" => respond(start_response, "299 Very Custom Reason", &text, &[b"ok"]),
            "/latin1" => respond(
                start_response,
                "200 OK",
                &[h("X-Latin1", "caf\u{e9}")],
                &[b"ok"],
            ),
            "/loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/forge-log" => {
                let forged = "innocent\nERROR route=\"/bank\" forged by the guest\r\n";
                let _ = start_response.call("200 OK", &text, Some(forged));
                Err(format!("raised\nERROR route=\"/bank\" {forged}"))
            }
            huge if huge.starts_with("/huge-exc-info/") => {
                let mib: usize = huge["/huge-exc-info/".len()..].parse().unwrap_or(1);
                let exc_info = "x".repeat(mib << 20);
                match start_response.call("200 OK", &text, Some(&exc_info)) {
                    Ok(()) => Ok(body(&[b"ok\n"], Some(start_response))),
                    Err(e) => error_page(start_response, e),
                }
            }
            many if many.starts_with("/many-headers/") => {
                let n: usize = many["/many-headers/".len()..].parse().unwrap_or(0);
                let headers: Vec<(String, String)> =
                    (0..n).map(|i| h(&format!("X-{i}"), "v")).collect();
                respond(start_response, "200 OK", &headers, &[b"ok\n"])
            }
            alias if alias.starts_with("/alias-headers/") => {
                let mib: usize = alias["/alias-headers/".len()..].parse().unwrap_or(1);
                let block = std::mem::ManuallyDrop::new(vec![b'v'; mib << 20]);
                // Every value points at `block`; never dropped, so never freed twice.
                let headers = std::mem::ManuallyDrop::new(
                    (0..200)
                        .map(|i| {
                            // SAFETY: `block` is ASCII and outlives these strings, which
                            // are never dropped or written.
                            let value = unsafe {
                                String::from_raw_parts(
                                    block.as_ptr().cast_mut(),
                                    block.len(),
                                    block.len(),
                                )
                            };
                            (format!("X-{i}"), value)
                        })
                        .collect::<Vec<_>>(),
                );
                match start_response.call("200 OK", &headers, None) {
                    Ok(()) => Ok(body(&[b"accepted\n"], Some(start_response))),
                    Err(e) => error_page(start_response, e),
                }
            }
            alloc if alloc.starts_with("/alloc/") => {
                let mib: usize = alloc["/alloc/".len()..].parse().unwrap_or(0);
                let block = std::hint::black_box(vec![1u8; mib << 20]);
                let text = format!("allocated {} MiB\n", block.len() >> 20);
                respond(start_response, "200 OK", &text_plain(), &[text.as_bytes()])
            }
            sleep if sleep.starts_with("/sleep/") => {
                let ms = sleep["/sleep/".len()..].parse().unwrap_or(0);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                respond(start_response, "200 OK", &text, &[b"slept\n"])
            }
            other => match other
                .strip_prefix("/status/")
                .and_then(|c| c.parse::<u16>().ok())
            {
                Some(code) => {
                    let reason = match code {
                        204 => "No Content",
                        304 => "Not Modified",
                        404 => "Not Found",
                        418 => "I'm a teapot",
                        _ => "Custom",
                    };
                    let chunk = format!("body for {code}\n");
                    respond(
                        start_response,
                        &format!("{code} {reason}"),
                        &text,
                        &[chunk.as_bytes()],
                    )
                }
                None => respond(
                    start_response,
                    "404 Not Found",
                    &text,
                    &[b"no such error case\n"],
                ),
            },
        }
    }
}

export!(Errors);
