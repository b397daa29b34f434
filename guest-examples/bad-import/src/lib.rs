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
            export cheroot:wsgi/application@0.1.0;
        }
    "#,
    path: "../../wit",
    generate_all,
});

use cheroot::wsgi::types::{Environ, StartResponse};
use exports::cheroot::wsgi::application::{Body, Guest, GuestBody};

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

    fn handle(environ: Environ, _start_response: StartResponse) -> Result<Body, String> {
        let everything: Vec<u8> = environ
            .vars
            .iter()
            .flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()].concat())
            .collect();
        tenant::exfiltrate::uplink::send(&everything);
        Err("sent".into())
    }
}

export!(BadImport);
