//! Gives the C shared library its soname (cargo-c's rule: `0.x.y` ->
//! `libscylla_shard.so.0.x`, `x.y.z` with x >= 1 -> `libscylla_shard.so.x`).
//! Only the cdylib link sees it; the rlib and staticlib are unaffected.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_else(|_| "0".into());
    let soname = if major == "0" {
        format!("libscylla_shard.so.0.{minor}")
    } else {
        format!("libscylla_shard.so.{major}")
    };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
