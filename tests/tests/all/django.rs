//! A real Django project (guest-examples/python/django_site: a guestbook with a model, a
//! form with CSRF, sessions, a JSON view, custom error pages, a static file and SQLite in
//! the route's `data` directory), built with `build-python` and served by cheroot-wasm,
//! compared with the real cheroot serving the very same project natively.
//!
//! Needs componentize-py, cheroot and Django (`scripts/test` and `.ci/run` install them,
//! pinned).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::*;

/// The component and the copy of the project it was built from, built once per test run.
fn django_site() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        build_python_project(
            "django_site.wsgi:application",
            "django_site",
            "django_site",
            Some("django-requirements.txt"),
        )
    })
}

/// A fresh directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cheroot-wasm-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real cheroot serving the project natively, its database in a directory of its own.
struct Native {
    cheroot: Cheroot,
    data: Scratch,
}

impl Native {
    async fn start(project: &Path) -> Native {
        let data = Scratch::new("django-native");
        let env = [("DJANGO_DATA_DIR", data.0.as_path())];
        let cheroot = Cheroot::start("django_site.wsgi:application", project, &env).await;
        Native { cheroot, data }
    }
}

/// A browser of sorts: one server, the cookies it set.
struct Client {
    addr: SocketAddr,
    host: String,
    cookies: Vec<(String, String)>,
}

impl Client {
    fn new(addr: SocketAddr, host: &str) -> Client {
        Client {
            addr,
            host: host.into(),
            cookies: Vec::new(),
        }
    }

    /// `method path` with the cookies so far (and `form` as the body), on a fresh
    /// connection; keeps the cookies the response sets.
    async fn send(&mut self, method: &str, path: &str, form: Option<&str>) -> Response {
        // Boxed: the test's future holds many of these, too big for a thread's stack in a
        // debug build otherwise.
        Box::pin(self.send_now(method, path, form)).await
    }

    async fn send_now(&mut self, method: &str, path: &str, form: Option<&str>) -> Response {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        if let Some(form) = form {
            request.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                form.len()
            ));
        }
        request.push_str("Connection: close\r\n\r\n");
        request.push_str(form.unwrap_or(""));
        let response = parse_one(&raw(self.addr, request.as_bytes()).await);
        for (name, value) in &response.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                let pair = value.split(';').next().unwrap().trim();
                let (k, v) = pair.split_once('=').unwrap();
                self.cookies.retain(|(name, _)| name != k);
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        response
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The CSRF token in a page's form.
fn csrf_token(page: &Response) -> String {
    let text = page.text();
    let start = text
        .find("name=\"csrfmiddlewaretoken\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF token in {text}"))
        + "name=\"csrfmiddlewaretoken\" value=\"".len();
    text[start..][..text[start..].find('"').unwrap()].to_string()
}

/// Every text between `start` and the next `end` in `text` replaced with `*`.
fn blank_between(text: &str, start: &str, end: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(start) {
        out.push_str(&rest[..i + start.len()]);
        rest = &rest[i + start.len()..];
        let j = rest.find(end).unwrap_or(rest.len());
        out.push('*');
        rest = &rest[j..];
    }
    out.push_str(rest);
    out
}

/// What must be equal between the two servers ([`comparable`]), less what differs by
/// nature: CSRF tokens, cookie values and expiry times, the entries' creation times.
fn comparable_page(r: &Response) -> (u16, Vec<(String, String)>, String) {
    let (status, headers, body) = comparable(r);
    let mut headers: Vec<(String, String)> = headers
        .into_iter()
        .map(|(k, v)| {
            if k != "set-cookie" {
                return (k, v);
            }
            let cookie: Vec<String> = v
                .split(';')
                .map(str::trim)
                .enumerate()
                .map(|(i, part)| {
                    let (name, _) = part.split_once('=').unwrap_or((part, ""));
                    if i == 0 || name.eq_ignore_ascii_case("expires") {
                        format!("{name}=*")
                    } else {
                        part.to_string()
                    }
                })
                .collect();
            (k, cookie.join("; "))
        })
        .collect();
    headers.sort();
    let body = blank_between(&body, "name=\"csrfmiddlewaretoken\" value=\"", "\"");
    let body = blank_between(&body, "<time datetime=\"", "</time>");
    let body = blank_between(&body, "\"created\": \"", "\"");
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_answers_exactly_as_under_cheroot() {
    let (component, project) = django_site();
    let server = TestServer::start(&route(
        "/",
        component.to_str().unwrap(),
        r#"data = { "/data" = "data" }"#,
    ))
    .await;
    let native = Native::start(project).await;
    let cheroot = &native.cheroot;
    let mut ours = Client::new(server.addr, "127.0.0.1");
    let mut theirs = Client::new(cheroot.addr, "127.0.0.1");
    let mut statuses = Vec::new();
    // The same request to both servers (`$form`: each one's body, if any); their answers
    // must agree.
    macro_rules! both {
        ($what:expr, $method:expr, $path:expr) => {
            both!($what, $method, $path, None, None)
        };
        ($what:expr, $method:expr, $path:expr, $ours:expr, $theirs:expr) => {{
            let a = ours.send($method, $path, $ours).await;
            let b = theirs.send($method, $path, $theirs).await;
            assert_eq!(comparable_page(&a), comparable_page(&b), "{}", $what);
            statuses.push(a.status);
            (a, b)
        }};
    }

    // The first request creates the database: the page, a CSRF cookie, a session.
    let (page, their_page) = both!("the first page", "GET", "/");
    assert!(page.text().contains("No entries yet."), "{}", page.text());
    assert!(page.text().contains("Your visits: 1"), "{}", page.text());
    assert!(ours.cookie("csrftoken").is_some() && ours.cookie("sessionid").is_some());

    // POST with the token: the entry is saved, then a redirect (Post/Redirect/Get).
    let entry = "text=Hello+%26+%3Cb%3Ewasm%3C%2Fb%3E";
    let form = |page: &Response| format!("{entry}&csrfmiddlewaretoken={}", csrf_token(page));
    let (redirect, _) = both!(
        "the form's POST",
        "POST",
        "/",
        Some(form(&page).as_str()),
        Some(form(&their_page).as_str())
    );
    assert_eq!(redirect.header("location"), Some("/"));
    let (page, _) = both!("the page after the POST", "GET", "/");
    assert!(
        page.text()
            .contains("<li>Hello &amp; &lt;b&gt;wasm&lt;/b&gt; <time"),
        "{}",
        page.text()
    );
    assert!(page.text().contains("Your visits: 2"), "{}", page.text());
    let (json, _) = both!("the JSON view", "GET", "/entries.json");
    let entries = json.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["text"], "Hello & <b>wasm</b>");

    // Without the token (and without the cookie): Django's CSRF check, the custom 403.
    let mut ours_bare = Client::new(server.addr, "127.0.0.1");
    let mut theirs_bare = Client::new(cheroot.addr, "127.0.0.1");
    let a = ours_bare.send("POST", "/", Some("text=forged")).await;
    let b = theirs_bare.send("POST", "/", Some("text=forged")).await;
    assert_eq!(
        comparable_page(&a),
        comparable_page(&b),
        "a POST without a token"
    );
    assert!(a.text().contains("CSRF check failed"), "{}", a.text());
    statuses.push(a.status);

    let (missing, _) = both!("a missing page", "GET", "/missing/page");
    assert!(
        missing
            .text()
            .contains("There is no page at /missing/page."),
        "{}",
        missing.text()
    );
    let (failed, _) = both!("a view that raises", "GET", "/boom");
    assert!(failed.text().contains("Something went wrong"));
    let (css, _) = both!("a static file", "GET", "/static/guestbook/style.css");
    assert_eq!(css.header("content-type"), Some("text/css"));
    assert!(css.text().starts_with("body {"));
    both!("a missing static file", "GET", "/static/guestbook/none.css");
    let mut ours_elsewhere = Client::new(server.addr, "evil.example");
    let mut theirs_elsewhere = Client::new(cheroot.addr, "evil.example");
    let a = ours_elsewhere.send("GET", "/", None).await;
    let b = theirs_elsewhere.send("GET", "/", None).await;
    assert_eq!(
        comparable_page(&a),
        comparable_page(&b),
        "a host not in ALLOWED_HOSTS"
    );
    statuses.push(a.status);

    // Both servers really ran Django (equal answers could otherwise be equal failures).
    assert_eq!(statuses, [200, 302, 200, 200, 403, 404, 500, 200, 404, 400]);
    // The entry is in each server's own database, in the directory it was given.
    assert!(server.dir.join("data/db.sqlite3").is_file());
    assert!(native.data.0.join("db.sqlite3").is_file());
}

/// The route's `env` reaches settings that were first read when the component was built
/// (its secret key, allowed hosts and data directory), and the database outlives the
/// server: a restarted server finds the entries made before.
#[tokio::test]
async fn a_django_sites_settings_come_from_the_route_and_its_data_stays() {
    let (component, _) = django_site();
    let data = Scratch::new("django-data");
    let routes = route(
        "/",
        component.to_str().unwrap(),
        &format!(
            "env = {{ DJANGO_DATA_DIR = \"/srv/site\", DJANGO_ALLOWED_HOSTS = \"guestbook.test\", DJANGO_SECRET_KEY = \"another secret\" }}\ndata = {{ \"/srv/site\" = {:?} }}",
            data.0.to_str().unwrap()
        ),
    );
    {
        let server = TestServer::start(&routes).await;
        // Not a host the route allows (though the settings' default would).
        let mut stranger = Client::new(server.addr, "127.0.0.1");
        assert_eq!(stranger.send("GET", "/", None).await.status, 400);
        let mut client = Client::new(server.addr, "guestbook.test");
        let page = client.send("GET", "/", None).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let form = format!("text=kept&csrfmiddlewaretoken={}", csrf_token(&page));
        assert_eq!(client.send("POST", "/", Some(&form)).await.status, 302);
        server.stop().await;
    }
    assert!(data.0.join("db.sqlite3").is_file());

    let server = TestServer::start(&routes).await;
    let mut client = Client::new(server.addr, "guestbook.test");
    let json = client.send("GET", "/entries.json", None).await;
    assert_eq!(json.status, 200, "{}", json.text());
    assert_eq!(json.json()["entries"][0]["text"], "kept");
}
