use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::{Absence, INSTALLED, cfgs, find_chromium, watched};

/// A Node project folder of its own under the system's temporary folder, removed on drop.
struct Project(PathBuf);

impl Project {
    /// With `files` of [`INSTALLED`] present.
    fn with(name: &str, files: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "conformance-prerequisites-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for file in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "{}").unwrap();
        }
        Self(dir)
    }

    /// A file that stands for a Chromium.
    fn chromium(&self) -> PathBuf {
        let path = self.0.join("chromium");
        std::fs::write(&path, "").unwrap();
        path
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn nothing_installed_ignores_every_test_through_one_cfg() {
    let project = Project::with("empty", &[]);
    let chromium = project.chromium();
    for browser in [None, Some(chromium.as_path())] {
        assert_eq!(cfgs(None, &project.0, browser), ["missing_node_modules"]);
    }
}

#[test]
fn a_partly_installed_project_counts_as_not_installed() {
    let project = Project::with("partly", &INSTALLED[..3]);
    let chromium = project.chromium();
    assert_eq!(
        cfgs(None, &project.0, Some(&chromium)),
        ["missing_node_modules"],
        "puppeteer-core is missing"
    );
}

#[test]
fn without_chromium_only_the_browser_test_is_ignored() {
    let project = Project::with("no-chromium", &INSTALLED);
    assert_eq!(cfgs(None, &project.0, None), ["missing_chromium"]);
}

#[test]
fn with_everything_installed_nothing_is_ignored() {
    let project = Project::with("complete", &INSTALLED);
    let chromium = project.chromium();
    assert!(cfgs(None, &project.0, Some(&chromium)).is_empty());
}

/// In CI a missing tool is a failure: the tests are never ignored, whatever `CI` is set to.
#[test]
fn in_ci_nothing_is_ignored() {
    let project = Project::with("ci", &[]);
    for ci in ["true", "1", ""].map(|value| Some(OsStr::new(value))) {
        assert!(cfgs(ci, &project.0, None).is_empty(), "CI={ci:?}");
    }
}

/// The reasons `cargo test` prints are the ones the tests carry, and every test carries them.
#[test]
fn the_test_files_ignore_with_the_remedies() {
    // Whitespace and a trailing comma are rustfmt's to choose.
    let flat = |text: &str| {
        text.split_whitespace()
            .collect::<String>()
            .replace(",)", ")")
    };
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    for (file, absences) in [
        ("real_idp.rs", &[Absence::NodeModules][..]),
        ("browser.rs", &[Absence::NodeModules, Absence::Chromium][..]),
    ] {
        let source = flat(&std::fs::read_to_string(tests.join(file)).unwrap());
        let count = source.matches("#[tokio::test").count();
        assert!(count > 0, "{file} has tests");
        for absence in absences {
            let attribute = flat(&format!(
                "#[cfg_attr({}, ignore = \"{}\")]",
                absence.cfg(),
                absence.remedy()
            ));
            assert_eq!(
                source.matches(&attribute).count(),
                count,
                "{file}: every test carries {attribute}"
            );
        }
    }
}

#[test]
fn a_chromium_named_by_the_variable_is_the_only_one_tried() {
    let project = Project::with("chromium", &[]);
    let chromium = project.chromium();
    assert_eq!(find_chromium(Some(chromium.clone())), Some(chromium));
    assert_eq!(find_chromium(Some(project.0.join("absent"))), None);
}

/// Cargo is told to watch what exists: the installed files once there, else the nearest folder
/// of theirs inside the project, never above it.
#[test]
fn the_build_script_watches_the_nearest_existing_paths() {
    let empty = Project::with("watch-empty", &[]);
    let chromium = empty.chromium();
    assert_eq!(
        watched(&empty.0, Some(&chromium), true),
        [empty.0.clone(), chromium.clone()]
    );

    let partly = Project::with("watch-partly", &INSTALLED[..1]);
    let mut expected = vec![
        partly.0.join(INSTALLED[0]),
        partly.0.join("node_modules"),
        chromium.clone(),
    ];
    expected.sort();
    assert_eq!(watched(&partly.0, Some(&chromium), true), expected);

    let complete = Project::with("watch-complete", &INSTALLED);
    let mut expected: Vec<PathBuf> = INSTALLED.iter().map(|f| complete.0.join(f)).collect();
    expected.push(chromium.clone());
    expected.sort();
    assert_eq!(watched(&complete.0, Some(&chromium), true), expected);

    assert_eq!(
        watched(&complete.0, None, true).len(),
        INSTALLED.len(),
        "a missing CHROMIUM is watched as a variable, not a path"
    );
}
