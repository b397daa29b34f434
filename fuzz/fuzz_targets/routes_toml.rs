//! `cheroot_wasm::fuzzing::routes_toml`: see its doc for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cheroot_wasm::fuzzing::routes_toml(data));
