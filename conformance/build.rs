//! Decides, when the tests are compiled, whether the real-IdP, browser, Python-upstream and
//! shared-state tests can run here: without what they need (Node 22 and its packages, a headless
//! Chromium, the MCP Python SDK, `redis-server`) they are compiled
//! `#[ignore = "needs …"]`, outside CI only. The rules are `src/real_idp/prerequisites.rs`.

use std::path::{Path, PathBuf};

#[path = "src/real_idp/prerequisites.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the library's module, of which the build script uses a part"
)]
mod prerequisites;

use prerequisites::Absence;

fn main() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("real-idp");
    let ci = std::env::var_os("CI");
    let explicit = std::env::var_os("CHROMIUM").map(PathBuf::from);
    let has_explicit = explicit.is_some();
    let chromium = prerequisites::find_chromium(explicit);

    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/real_idp/prerequisites.rs");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=CHROMIUM");
    for path in prerequisites::watched(&project, chromium.as_deref(), has_explicit) {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    for absence in [Absence::NodeModules, Absence::Chromium] {
        println!("cargo::rustc-check-cfg=cfg({})", absence.cfg());
    }
    for cfg in prerequisites::cfgs(ci.as_deref(), &project, chromium.as_deref()) {
        println!("cargo::rustc-cfg={cfg}");
    }
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("python-upstream");
    println!(
        "cargo::rustc-check-cfg=cfg({})",
        prerequisites::MISSING_PYTHON_SDK
    );
    // The SDK's files once installed (pip writes there), else the project's folder (the
    // virtual environment appears in it).
    let site = python.join(".venv/lib");
    let watched = if site.exists() { site } else { python.clone() };
    println!("cargo::rerun-if-changed={}", watched.display());
    if prerequisites::ignores(ci.as_deref()) && prerequisites::python_sdk_missing(&python) {
        println!("cargo::rustc-cfg={}", prerequisites::MISSING_PYTHON_SDK);
    }
    println!(
        "cargo::rustc-check-cfg=cfg({})",
        prerequisites::MISSING_REDIS
    );
    println!("cargo::rerun-if-env-changed=REDIS_SERVER");
    println!("cargo::rerun-if-env-changed=PATH");
    match prerequisites::redis_server() {
        Some(found) => println!("cargo::rerun-if-changed={}", found.display()),
        // Installing it (apt-get install redis-server) changes the directory.
        None => println!("cargo::rerun-if-changed=/usr/bin"),
    }
    if prerequisites::ignores(ci.as_deref()) && prerequisites::redis_server().is_none() {
        println!("cargo::rustc-cfg={}", prerequisites::MISSING_REDIS);
    }
}
