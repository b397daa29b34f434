//! The fuzz corpora, replayed on stable: every file of `fuzz/corpus/<target>/` goes through
//! the same `cheroot_wasm::fuzzing` function its cargo-fuzz target calls (a failed
//! invariant panics), so CI keeps every input the fuzzers found interesting, crashes they
//! found included, passing with a plain `cargo test`. Each corpus folder must have its
//! target and each target its folder and a fuzz target file.

use std::path::Path;

use cheroot_wasm::fuzzing::TARGETS;

fn fuzz_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn every_corpus_input_keeps_its_invariants() {
    let mut inputs = 0;
    for (name, target) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no inputs", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(
                outcome.is_ok(),
                "{name}: {} fails (run `cargo +nightly fuzz run {name} {}` to see it under the fuzzer)",
                file.display(),
                file.display()
            );
            inputs += 1;
        }
    }
    println!("{inputs} corpus inputs replayed");
}

#[test]
fn every_target_has_a_corpus_and_a_fuzz_target() {
    let names: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    for name in &names {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} is missing", target.display());
    }
    for entry in std::fs::read_dir(fuzz_dir().join("corpus")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            names.contains(&name.as_str()),
            "corpus/{name} has no target"
        );
    }
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &names {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
}

#[test]
fn the_corpora_stay_small() {
    let mut total = 0;
    for (name, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(
            files.len() <= 200,
            "{name}: {} files: run `cargo fuzz cmin`",
            files.len()
        );
        for file in files {
            total += file.unwrap().metadata().unwrap().len();
        }
    }
    assert!(total < 1 << 20, "{total} bytes of corpus: minimise it");
}
