//! The `cheroot-wasm` binary: everything is in the library (its `cli` layer).

fn main() -> std::process::ExitCode {
    cheroot_wasm::main()
}
