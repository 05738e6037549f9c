//! The checklist gate: every MUST-level requirement of sections A, B, C, D, E, G, H, K, R and T
//! has a test that cites its id, or a reasoned entry in `docs/not-applicable.md`; and the
//! generated `docs/conformance.md` is current.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use conformance::coverage::{
    GATED_SECTIONS, parse_checklist, parse_not_applicable, render, repo_root, scan_citations,
};

/// The checklist's rows, the tests citing each id, and the not-applicable reasons.
struct Inputs {
    requirements: Vec<conformance::coverage::Requirement>,
    citations: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    not_applicable: std::collections::BTreeMap<String, String>,
}

fn inputs() -> Inputs {
    let root = repo_root();
    let checklist = std::fs::read_to_string(root.join("docs/spec-checklist.md")).unwrap();
    let not_applicable = std::fs::read_to_string(root.join("docs/not-applicable.md")).unwrap();
    Inputs {
        requirements: parse_checklist(&checklist),
        citations: scan_citations(&root),
        not_applicable: parse_not_applicable(&not_applicable),
    }
}

#[test]
fn every_must_requirement_has_a_test_or_a_reason() {
    let Inputs {
        requirements,
        citations,
        not_applicable,
    } = inputs();
    assert!(
        requirements.len() > 100,
        "the checklist parsed to {} rows",
        requirements.len()
    );
    let uncovered: Vec<String> = requirements
        .iter()
        .filter(|r| r.is_must() && r.id.starts_with(GATED_SECTIONS))
        .filter(|r| !citations.contains_key(&r.id) && !not_applicable.contains_key(&r.id))
        .map(|r| format!("{} ({}): {}", r.id, r.level, r.text))
        .collect();
    assert!(
        uncovered.is_empty(),
        "MUST requirements with neither a test nor a reason:\n{}",
        uncovered.join("\n")
    );
    for (id, reason) in &not_applicable {
        assert!(
            requirements.iter().any(|r| &r.id == id),
            "not-applicable entry {id} is not a checklist id"
        );
        assert!(reason.len() >= 40, "{id}: give a reason, not a label");
        assert!(
            !citations.contains_key(id),
            "{id} is both tested and listed as not applicable"
        );
    }
}

#[test]
fn the_conformance_table_is_current() {
    let Inputs {
        requirements,
        citations,
        not_applicable,
    } = inputs();
    let table = render(&requirements, &citations, &not_applicable);
    let path = repo_root().join("docs/conformance.md");
    if std::env::var_os("UPDATE_CONFORMANCE").is_some() {
        std::fs::write(&path, &table).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == table,
        "docs/conformance.md is stale: UPDATE_CONFORMANCE=1 cargo test -p conformance --test coverage"
    );
}
