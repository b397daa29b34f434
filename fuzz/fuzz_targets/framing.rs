//! `cheroot_wasm::fuzzing::framing`: see its doc for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cheroot_wasm::fuzzing::framing(data));
