//! A component that imports an interface no cheroot-wasm host provides
//! (`tenant:exfiltrate/uplink`, standing for wasi:http or any other capability a tenant
//! might hope to find). The server must refuse it at start-up, naming the import and the
//! route, instead of failing on its first request.

wit_bindgen::generate!({
    inline: r#"
        package tenant:exfiltrate;

        interface uplink {
            send: func(data: list<u8>);
        }

        world app {
            import uplink;
            export cheroot:wsgi/application@0.2.0;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use cheroot::wsgi::types::{Environ, StartResponse};
use exports::cheroot::wsgi::application::{Guest, GuestBody, Reply};

struct BadImport;

/// Never produced: the component cannot be instantiated by this host.
struct Nothing;

impl GuestBody for Nothing {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
}

impl Guest for BadImport {
    type Body = Nothing;

    fn handle(environ: Environ, _start_response: StartResponse) -> Result<Reply, String> {
        tenant::exfiltrate::uplink::send(environ.vars.as_bytes());
        Err("sent".into())
    }
}

export!(BadImport);
