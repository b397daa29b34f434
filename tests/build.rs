//! Builds every crate of ../guest-examples for wasm32-wasip2 (release) into OUT_DIR and
//! writes `gen.rs`: one `pub const NAME: &str` path per guest and a `foreach_guest!` macro,
//! the way wasmtime's test-programs artifacts crate does, so `cargo test` needs nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let guests = manifest_dir.join("../guest-examples");
    let wit = manifest_dir.join("../wit");

    check_target_installed();

    let members = workspace_members(&guests.join("Cargo.toml"));
    println!("cargo:rerun-if-changed={}", wit.display());
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../sdk/rust").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.lock").display()
    );
    for member in &members {
        println!(
            "cargo:rerun-if-changed={}",
            guests.join(member).join("src").display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            guests.join(member).join("Cargo.toml").display()
        );
    }
    println!("cargo:rerun-if-env-changed=CI");

    let target_dir = out_dir.join("guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .arg("build")
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .args(["--target", "wasm32-wasip2", "--release"])
        .env("CARGO_TARGET_DIR", &target_dir)
        // The outer build's settings are for the host, not for wasm.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG");
    if std::env::var_os("CI").is_some() {
        build.arg("--locked");
    }
    let status = build
        .status()
        .expect("running cargo to build the guest examples");
    assert!(
        status.success(),
        "building ../guest-examples for wasm32-wasip2 failed"
    );

    let mut generated = String::new();
    for member in &members {
        let wasm = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", member.replace('-', "_")));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        generated.push_str(&format!(
            "/// The `{member}` guest example, built for wasm32-wasip2.\npub const {}: &str = {:?};\n",
            member.to_uppercase().replace('-', "_"),
            wasm.display().to_string()
        ));
    }
    generated.push_str("/// Calls `$mac!(name)` for every guest example, so each must have a test.\n#[macro_export]\nmacro_rules! foreach_guest {\n    ($mac:ident) => {\n");
    for member in &members {
        generated.push_str(&format!("        $mac!({});\n", member.replace('-', "_")));
    }
    generated.push_str("    };\n}\n");
    std::fs::write(out_dir.join("gen.rs"), generated).expect("writing gen.rs");
}

/// Fails early, with the fix, when the wasm target is missing (rustup's auto-install may be
/// off, and a missing target otherwise shows up as a confusing `core` not found error).
fn check_target_installed() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc --print sysroot");
    let sysroot = String::from_utf8(sysroot.stdout).expect("sysroot is UTF-8");
    let target = Path::new(sysroot.trim()).join("lib/rustlib/wasm32-wasip2");
    assert!(
        target.is_dir(),
        "the wasm32-wasip2 target is not installed: run `rustup target add wasm32-wasip2`"
    );
}

/// The `members = [...]` of a workspace manifest (the guest workspace keeps it on one list).
fn workspace_members(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("reading guest-examples/Cargo.toml");
    let start = text
        .find("members")
        .and_then(|i| text[i..].find('[').map(|j| i + j + 1))
        .expect("members = [...]");
    let end = start + text[start..].find(']').expect("members list closes");
    text[start..end]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}
