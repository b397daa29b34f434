//! Answers with its whole environ as a JSON object (keys sorted), so tests and curious
//! plugin developers can see exactly what the server passes. `?read=1` also reads
//! `wsgi.input` to the end and adds it as `"wsgi.input.body"` (bytes as Latin-1), and
//! `?env=NAME` adds the process environment variable NAME as `"env.NAME"` (or null).

wit_bindgen::generate!({ world: "app", path: "../../wit" });

use std::cell::RefCell;

use cheroot::wsgi::types::{Environ, StartResponse};
use exports::cheroot::wsgi::application::{Body, Guest, GuestBody};

struct EnvironApp;

/// A body of one ready chunk.
struct Ready(RefCell<Option<Vec<u8>>>);

impl GuestBody for Ready {
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.borrow_mut().take())
    }
}

impl Guest for EnvironApp {
    type Body = Ready;

    fn handle(environ: Environ, start_response: StartResponse) -> Result<Body, String> {
        let mut vars: Vec<(String, Option<String>)> = environ
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let query = environ
            .vars
            .iter()
            .find(|(k, _)| k == "QUERY_STRING")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            match key {
                "read" if value == "1" => {
                    let mut body = Vec::new();
                    loop {
                        let chunk = environ.input.read(65536).map_err(|e| e.to_string())?;
                        if chunk.is_empty() {
                            break;
                        }
                        body.extend_from_slice(&chunk);
                    }
                    vars.push((
                        "wsgi.input.body".into(),
                        Some(body.iter().map(|&b| char::from(b)).collect()),
                    ));
                }
                "env" => vars.push((format!("env.{value}"), std::env::var(value).ok())),
                _ => {}
            }
        }
        vars.sort();
        let mut json = String::from("{");
        for (i, (key, value)) in vars.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            push_json_string(&mut json, key);
            json.push(':');
            match value {
                Some(value) => push_json_string(&mut json, value),
                None => json.push_str("null"),
            }
        }
        json.push_str("}\n");
        let headers = [
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Content-Length".to_string(), json.len().to_string()),
        ];
        start_response
            .call("200 OK", &headers, None)
            .map_err(|e| e.to_string())?;
        Ok(Body::new(Ready(RefCell::new(Some(json.into_bytes())))))
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

export!(EnvironApp);
