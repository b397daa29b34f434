//! Answers with its whole environ as a JSON object (keys sorted), so tests and curious
//! plugin developers can see exactly what the server passes. `?read=1` also reads
//! `wsgi.input` to the end and adds it as `"wsgi.input.body"` (bytes as Latin-1), and
//! `?env=NAME` adds the process environment variable NAME as `"env.NAME"` (or null).
//!
//! Written with the Rust SDK (sdk/rust): a function from a request to a response.

use std::io::Read as _;

use cheroot_wsgi::{Request, Response};

fn environ(mut request: Request) -> Result<Response, String> {
    let mut vars: Vec<(String, Option<String>)> = request
        .vars()
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    let query = request.query().to_string();
    for (key, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match key {
            "read" if value == "1" => {
                let mut body = Vec::new();
                request
                    .body()
                    .read_to_end(&mut body)
                    .map_err(|e| e.to_string())?;
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
    Ok(Response::new("200 OK", json).header("Content-Type", "application/json"))
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

cheroot_wsgi::export!(environ);
