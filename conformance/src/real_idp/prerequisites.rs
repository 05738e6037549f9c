//! What the real-IdP and browser tests need from outside Rust, and what happens without it.
//!
//! `npm ci --prefix conformance/real-idp` installs Node 22 and the packages the tests run; the
//! browser test also needs a headless Chromium. The crate's build script compiles this file too
//! (by path) and looks for them when the tests are compiled: if something is missing it sets the
//! cfg its [`Absence`] names, under which those tests carry `#[ignore = "needs …"]`, so `cargo
//! test` lists each as `ignored, needs …` and counts it as ignored, where it used to pass in
//! 0.00 s. In CI ([`ignores`]) it never sets them: there the tests run, and fail saying what is
//! missing ([`super::node`], [`super::browser`]), as they do when run with `--include-ignored`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The files `npm ci` installs that the tests run, relative to the Node project: the Node 22
/// binary its lockfile pins, the provider, the TypeScript SDK and puppeteer-core.
pub const INSTALLED: [&str; 4] = [
    "node_modules/.bin/node",
    "node_modules/oidc-provider/package.json",
    "node_modules/@modelcontextprotocol/sdk/package.json",
    "node_modules/puppeteer-core/package.json",
];

/// Where a headless Chromium is looked for when `CHROMIUM` is not set: Debian's headless shell,
/// Debian's full Chromium, Google Chrome (as GitHub's runners have).
pub const CHROMIUM_PATHS: [&str; 3] = [
    "/usr/bin/chromium-headless-shell",
    "/usr/bin/chromium",
    "/usr/bin/google-chrome",
];

/// Something the tests need that is not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absence {
    /// The Node project is not installed, or only partly: every real-IdP and browser test.
    NodeModules,
    /// No headless Chromium: the browser test.
    Chromium,
}

impl Absence {
    /// The cfg the build script sets for it; the tests' `cfg_attr(…, ignore = …)` name it.
    pub fn cfg(self) -> &'static str {
        match self {
            Self::NodeModules => "missing_node_modules",
            Self::Chromium => "missing_chromium",
        }
    }

    /// What a test needs and how to get it, as its `ignore` reason says it.
    pub fn remedy(self) -> &'static str {
        match self {
            Self::NodeModules => {
                "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
            }
            Self::Chromium => {
                "needs a headless Chromium: apt-get install chromium-headless-shell, or set CHROMIUM"
            }
        }
    }
}

/// What the real-IdP tests miss in the Node project at `project`, if anything.
pub fn real_idp_absence(project: &Path) -> Option<Absence> {
    INSTALLED
        .iter()
        .any(|file| !project.join(file).exists())
        .then_some(Absence::NodeModules)
}

/// What the browser test misses, if anything: the Node project first (without it nothing runs),
/// then `chromium`, the browser [`find_chromium`] found.
pub fn browser_absence(project: &Path, chromium: Option<&Path>) -> Option<Absence> {
    real_idp_absence(project).or(chromium.is_none().then_some(Absence::Chromium))
}

/// The Chromium to run: `explicit` (the `CHROMIUM` variable) when set, if it exists (no other is
/// tried in its place); else the first of [`CHROMIUM_PATHS`] that exists.
pub fn find_chromium(explicit: Option<PathBuf>) -> Option<PathBuf> {
    match explicit {
        Some(path) => path.exists().then_some(path),
        None => CHROMIUM_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|path| path.exists()),
    }
}

/// Whether an absence makes the tests ignored (`true`) or leaves them to run and fail: outside CI
/// only. `ci`: the `CI` variable (set, to anything, in CI).
pub fn ignores(ci: Option<&OsStr>) -> bool {
    ci.is_none()
}

/// The cfgs to set: the absences of the real-IdP and the browser tests, outside CI; each cfg once
/// (an absent Node project ignores both through one cfg).
pub fn cfgs(ci: Option<&OsStr>, project: &Path, chromium: Option<&Path>) -> Vec<&'static str> {
    if !ignores(ci) {
        return Vec::new();
    }
    let mut cfgs: Vec<&'static str> = [
        real_idp_absence(project),
        browser_absence(project, chromium),
    ]
    .into_iter()
    .flatten()
    .map(Absence::cfg)
    .collect();
    cfgs.dedup();
    cfgs
}

/// The paths whose change can change [`cfgs`], for `cargo::rerun-if-changed`, chosen so that Cargo
/// checks few files: each installed file that exists (its removal reruns the build script), else
/// the nearest folder of it that exists inside `project` (`npm ci` writing into it does); the
/// Chromium found, else the existing folders of [`CHROMIUM_PATHS`] (an install writes there).
/// A missing `CHROMIUM` is left to `rerun-if-env-changed`.
pub fn watched(project: &Path, chromium: Option<&Path>, explicit: bool) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = INSTALLED
        .iter()
        .map(|file| {
            project
                .join(file)
                .ancestors()
                .take_while(|path| path.starts_with(project))
                .find(|path| path.exists())
                .unwrap_or(project)
                .to_path_buf()
        })
        .collect();
    match chromium {
        Some(path) => paths.push(path.to_path_buf()),
        None if !explicit => paths.extend(
            CHROMIUM_PATHS
                .iter()
                .filter_map(|path| Path::new(path).parent())
                .filter(|folder| folder.is_dir())
                .map(Path::to_path_buf),
        ),
        None => {}
    }
    paths.sort();
    paths.dedup();
    paths
}

/// How to install the gateway tests' Python upstream (the official MCP Python SDK), as the ignore
/// reason of its tests says it.
pub const PYTHON_REMEDY: &str = "needs the MCP Python SDK: python3 -m venv conformance/python-upstream/.venv && conformance/python-upstream/.venv/bin/pip install -r conformance/python-upstream/requirements.txt";

/// The cfg the build script sets, outside CI, when [`python_sdk_missing`].
pub const MISSING_PYTHON_SDK: &str = "missing_python_sdk";

/// Whether the Python project at `project` lacks its virtual environment or the SDK in it.
pub fn python_sdk_missing(project: &Path) -> bool {
    let installed = std::fs::read_dir(project.join(".venv/lib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|version| {
            version
                .path()
                .join("site-packages/mcp/__init__.py")
                .exists()
        });
    !installed || !project.join(".venv/bin/python").exists()
}

// By path: the build script compiles this file from elsewhere (without tests, but rustfmt follows).
#[cfg(test)]
#[path = "prerequisites/tests.rs"]
mod tests;

/// The cfg under which the shared-state tests are ignored: no `redis-server` here.
pub const MISSING_REDIS: &str = "missing_redis";

/// Where the shared-state tests find `redis-server`: `REDIS_SERVER`, else the `PATH`.
pub fn redis_server() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(explicit));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| candidate.is_file())
}
