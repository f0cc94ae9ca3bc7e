//! The verdicts as JUnit XML (`--junit FILE`), the report format every CI
//! system shows: a test suite of budgets and one of regression rules, a
//! test case each, failures naming the containers and their values.
//!
//! The document follows the Jenkins xUnit plugin's `junit-10.xsd`, the
//! schema CI systems read JUnit by.

use std::fmt::Write as _;

use crate::loadtest::budget::BudgetResult;
use crate::loadtest::compare::regression::RegressionResult;
use crate::loadtest::format::units::rfc3339;
use crate::loadtest::summary::RunSummary;

/// One test case: its name, and its failure message and details if it
/// failed.
struct Case {
    name: String,
    failure: Option<(String, String)>,
}

pub fn render(summary: &RunSummary) -> String {
    let seconds = (summary.window.to_ns - summary.window.from_ns).max(0) as f64 / 1e9;
    let budgets: Vec<Case> = summary.budgets.iter().map(budget_case).collect();
    let regressions: Vec<Case> = summary
        .comparison
        .iter()
        .flat_map(|c| &c.regressions)
        .map(regression_case)
        .collect();
    let failures = |cases: &[Case]| cases.iter().filter(|c| c.failure.is_some()).count();
    let total = budgets.len() + regressions.len();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"docker-stats-service\" tests=\"{total}\" failures=\"{}\" errors=\"0\" time=\"{seconds:.3}\">",
        failures(&budgets) + failures(&regressions)
    );
    let host = summary.run.as_ref().map_or("", |r| r.host.as_str());
    let stamp = rfc3339(summary.window.from_ns);
    for (suite, cases) in [("budgets", &budgets), ("regressions", &regressions)] {
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\" timestamp=\"{}\" hostname=\"{}\">",
            cases.len(),
            failures(cases),
            attribute(&stamp),
            attribute(host)
        );
        for case in cases.iter() {
            let _ = write!(
                xml,
                "    <testcase name=\"{}\" classname=\"docker-stats-service.{suite}\" time=\"{seconds:.3}\"",
                attribute(&case.name)
            );
            match &case.failure {
                None => xml.push_str("/>\n"),
                Some((message, details)) => {
                    let _ = writeln!(
                        xml,
                        ">\n      <failure type=\"{suite}\" message=\"{}\">{}</failure>\n    </testcase>",
                        attribute(message),
                        text(details)
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn budget_case(budget: &BudgetResult) -> Case {
    let failure = (!budget.passed).then(|| {
        let outside: Vec<String> = budget
            .containers
            .iter()
            .filter(|c| c.passed == Some(false))
            .map(|c| format!("{} {}", c.container, number(c.value)))
            .collect();
        let reason = budget.reason.clone().unwrap_or_default();
        let message = if outside.is_empty() {
            format!("{}: {reason}", budget.budget)
        } else {
            format!("{}: {reason}: {}", budget.budget, outside.join(", "))
        };
        let details: Vec<String> = budget
            .containers
            .iter()
            .map(|c| {
                let verdict = match c.passed {
                    Some(true) => "within",
                    Some(false) => "OUTSIDE",
                    None => "not measured",
                };
                format!("{}: {} ({verdict})", c.container, number(c.value))
            })
            .collect();
        (message, details.join("\n"))
    });
    Case {
        name: budget.budget.clone(),
        failure,
    }
}

fn regression_case(result: &RegressionResult) -> Case {
    let failure = (!result.passed).then(|| {
        let describe = |c: &crate::loadtest::compare::regression::RegressionCheck| {
            format!(
                "{} {} -> {}{} (noise {})",
                c.container,
                number(Some(c.baseline)),
                number(Some(c.current)),
                c.change_percent
                    .map_or(String::new(), |p| format!(", {p:+.1}%")),
                number(Some(c.noise))
            )
        };
        let regressed: Vec<String> = result
            .containers
            .iter()
            .filter(|c| c.regressed)
            .map(describe)
            .collect();
        let reason = result.reason.clone().unwrap_or_default();
        let message = if regressed.is_empty() {
            format!("{}: {reason}", result.rule)
        } else {
            format!("{}: {reason}: {}", result.rule, regressed.join(", "))
        };
        let details: Vec<String> = result
            .containers
            .iter()
            .map(|c| {
                let verdict = if c.regressed { "REGRESSED" } else { "within" };
                format!("{} ({verdict})", describe(c))
            })
            .collect();
        (message, details.join("\n"))
    });
    Case {
        name: result.rule.clone(),
        failure,
    }
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// Text for an attribute value: markup, quotes and line breaks escaped,
/// and characters XML 1.0 cannot hold dropped.
fn attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if allowed_in_xml(c) => out.push(c),
            _ => {}
        }
    }
    out
}

/// Text for element content.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if allowed_in_xml(c) => out.push(c),
            _ => {}
        }
    }
    out
}

fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_control_characters_never_reach_the_document() {
        assert_eq!(
            attribute("a<b>&\"c'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;"
        );
        assert_eq!(text("x<y]]>\u{0}"), "x&lt;y]]&gt;");
    }
}
