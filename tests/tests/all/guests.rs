//! Every guest example is exercised by a test: adding a guest without naming its tests here
//! fails to compile (`foreach_guest!` lists the crates of guest-examples/).

use cheroot_wasm_tests::foreach_guest;

/// Where each guest is tested.
#[expect(non_upper_case_globals, reason = "named after the guest crates")]
mod tested_in {
    pub const hello: &str = "dispatch.rs, response.rs, protocol.rs, admin.rs";
    pub const environ: &str = "environ.rs, dispatch.rs, pool.rs";
    pub const echo: &str = "streaming.rs, protocol.rs";
    pub const stream: &str = "streaming.rs, response.rs";
    pub const errors: &str = "errors.rs, streaming.rs, pool.rs, sandbox.rs";
    pub const hostile: &str = "sandbox.rs";
    pub const bad_import: &str = "sandbox.rs";
    pub const outbound: &str = "outbound.rs";
    pub const files: &str = "data.rs";
    pub const http_hello: &str = "wasi_http.rs, cli.rs; bench/run";
}

macro_rules! check {
    ($name:ident) => {
        assert!(!tested_in::$name.is_empty());
    };
}

#[test]
fn every_guest_example_has_tests() {
    foreach_guest!(check);
}
