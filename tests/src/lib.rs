//! The guest examples, built for wasm32-wasip2 by this package's build.rs, and where tests
//! keep their compile cache. Std-only, so any crate can dev-depend on it.

include!(concat!(env!("OUT_DIR"), "/gen.rs"));

/// A compile cache shared by every test, so each guest is compiled to native code once.
pub const CACHE_DIR: &str = concat!(env!("OUT_DIR"), "/compile-cache");
