//! Decides, when the tests are compiled, whether the jose interop test (`tests/api/interop.rs`)
//! can run here: it needs panva's jose, which `npm ci --prefix mock-idp/tests/interop` installs
//! (with Node, which npm runs on). Without it the test is compiled with the cfg `missing_jose`,
//! under which it carries `#[ignore = "needs …"]`: `cargo test` lists it as ignored, with the
//! reason, instead of passing it in 0.00 s. Never in CI (`CI` set): there it runs, and fails
//! saying what is missing.

use std::path::Path;

fn main() {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let jose = interop.join("node_modules/jose/package.json");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rustc-check-cfg=cfg(missing_jose)");
    // The package's file once installed (its removal reruns this script); until then the small
    // folder `npm ci` installs into, so that the install reruns it. Cargo reruns a build script
    // whose watched path is missing on every build, so a missing path is never watched.
    let watched = if jose.exists() { &jose } else { &interop };
    println!("cargo::rerun-if-changed={}", watched.display());
    if !jose.exists() && std::env::var_os("CI").is_none() {
        println!("cargo::rustc-cfg=missing_jose");
    }
}
