//! What both smoke tests check of a run.

use p_chat_bench::Report;

/// Asserts that a run delivered each of its `expected` deliveries exactly
/// once, in order, each with its latency, and that nothing went wrong.
pub fn assert_all_delivered_once(report: &Report, expected: u64) {
    assert_eq!(report.expected, expected, "{report}");
    assert_eq!(report.delivered, report.expected, "{report}");
    assert_eq!(report.latency_us.len(), report.expected, "{report}");
    assert_eq!(
        (
            report.lost,
            report.duplicated,
            report.reordered,
            report.errors,
            report.unsent
        ),
        (0, 0, 0, 0, 0),
        "{report}"
    );
}
