//! What a measured run saw, and the table line it is printed as.

/// What one measured run saw.
pub(crate) struct Run {
    pub(crate) ok: u64,
    pub(crate) rejected: u64,
    pub(crate) secs: f64,
    pub(crate) latencies_us: Vec<u32>,
    /// Commands per committed transaction.
    pub(crate) batch: f64,
}

impl Run {
    #[expect(clippy::cast_precision_loss, reason = "a rate for people")]
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index"
    )]
    pub(crate) fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

pub(crate) fn ratio(a: f64, b: f64) -> String {
    format!("{:.2}×", a / b.max(1e-9))
}

pub(crate) fn line(what: &str, o: &Run, vs_base: &str, vs_floor: &str) {
    println!(
        "| {what:<48} | {:>9.0} | {:>7.2} | {:>7.2} | {:>8} | {:>6.1} | {vs_base:>8} | {vs_floor:>8} |",
        o.rate(),
        o.pct(0.50),
        o.pct(0.99),
        o.rejected,
        o.batch,
    );
}
