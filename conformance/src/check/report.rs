//! A run's report as people and CI systems read it: a Markdown table (also what `docs/` keeps)
//! and JUnit XML. The JSON form is the report's serde serialization.

use std::fmt::Write as _;

use super::{Level, Outcome, Report};

/// The report as a Markdown table, one row per check, with a summary line. Nothing in it
/// depends on ports or tokens, so a kept copy changes only when a result does.
pub fn table(report: &Report) -> String {
    let (passed, failed, skipped) = report.counts();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{passed} passed, {failed} failed ({} of them MUST), {skipped} skipped.\n",
        report
            .findings
            .iter()
            .filter(|f| f.level == Level::Must && matches!(f.outcome, Outcome::Fail(_)))
            .count()
    );
    out.push_str("| id | level | check | result | why |\n| --- | --- | --- | --- | --- |\n");
    for finding in &report.findings {
        let (result, why) = match &finding.outcome {
            Outcome::Pass => ("pass", String::new()),
            Outcome::Fail(why) => ("**fail**", why.clone()),
            Outcome::Skip(why) => ("skipped", why.clone()),
        };
        let level = match finding.level {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        };
        let _ = writeln!(
            out,
            "| {} | {level} | {} | {result} | {} |",
            finding.id,
            cell(&finding.check),
            cell(&without_ports(&why))
        );
    }
    out
}

/// The report as JUnit XML: one test case per check, failures as `<failure>`, skips as
/// `<skipped>`; a SHOULD that fails is a failure of its own class (`should`), so CI can tell.
pub fn junit(report: &Report) -> String {
    let (_, failed, skipped) = report.counts();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"mcp-resource-server-conformance\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\">",
        report.findings.len()
    );
    for finding in &report.findings {
        let class = match finding.level {
            Level::Must => "must",
            Level::Should => "should",
        };
        let _ = write!(
            out,
            "  <testcase classname=\"{class}.{}\" name=\"{}\">",
            xml(&finding.id),
            xml(&finding.check)
        );
        match &finding.outcome {
            Outcome::Pass => {}
            Outcome::Fail(why) => {
                let _ = write!(
                    out,
                    "<failure message=\"{}\">sent: {}\nreceived: {}\nreference: {}</failure>",
                    xml(why),
                    xml(&finding.sent),
                    xml(&finding.received),
                    xml(&finding.reference)
                );
            }
            Outcome::Skip(why) => {
                let _ = write!(out, "<skipped message=\"{}\"/>", xml(why));
            }
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite>\n");
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `127.0.0.1:41234` → `127.0.0.1:{PORT}`: a kept report must not change with the ports.
fn without_ports(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("127.0.0.1:") {
        let (before, after) = rest.split_at(i + "127.0.0.1:".len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("{PORT}");
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Finding, Level, Outcome, Report};
    use super::*;

    fn finding(id: &str, level: Level, outcome: Outcome) -> Finding {
        Finding {
            id: id.into(),
            level,
            reference: "RFC 6750 §3".into(),
            check: "a <check> & \"more\"".into(),
            outcome,
            sent: "initialize".into(),
            received: "401".into(),
        }
    }

    /// JUnit: one case per finding, failures and skips counted and escaped; a SHOULD failure in
    /// its own class. The table: one row per finding, ports taken out, the counts on top.
    #[test]
    fn both_forms_carry_every_finding() {
        let report = Report {
            url: "http://127.0.0.1:3000/mcp".into(),
            findings: vec![
                finding("B01", Level::Must, Outcome::Pass),
                finding(
                    "T02",
                    Level::Must,
                    Outcome::Fail("got 200 at 127.0.0.1:41234".into()),
                ),
                finding("T05", Level::Should, Outcome::Fail("got 200".into())),
                finding("K06", Level::Must, Outcome::Skip("stateless".into())),
            ],
        };
        assert!(report.must_failed());
        let xml = junit(&report);
        assert!(
            xml.contains(r#"tests="4" failures="2" skipped="1""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"classname="must.T02" name="a &lt;check&gt; &amp; &quot;more&quot;""#)
        );
        assert!(xml.contains(r#"classname="should.T05""#));
        assert!(xml.contains(r#"<skipped message="stateless"/>"#));
        assert_eq!(xml.matches("<testcase").count(), 4);
        let text = table(&report);
        assert!(text.starts_with("1 passed, 2 failed (1 of them MUST), 1 skipped."));
        assert!(text.contains("got 200 at 127.0.0.1:{PORT}"), "{text}");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("| ")).count(),
            6,
            "head, rule, rows"
        );
    }
}
