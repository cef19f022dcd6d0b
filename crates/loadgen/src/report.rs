//! A scenario's result: a table for people and a JSON document for tools.

use serde::Serialize;
use serde_json::Value;

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured, with its unit.
    pub metric: String,
    /// The figure.
    pub value: f64,
    /// The target, as text (`≤ 8`, `≥ 150000`), when there is one.
    pub target: Option<String>,
    /// Whether the target was met.
    pub met: Option<bool>,
}

/// A scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `idle`, `fanout`, `pipeline`, `persist`, `history` or `reconnect`.
    pub scenario: String,
    /// The parameters it ran with.
    pub params: Value,
    /// The figures.
    pub rows: Vec<Row>,
    /// Correctness failures (lost, duplicated or reordered deliveries, failed pages, sockets
    /// not synced); empty when everything the server promised held.
    pub failures: Vec<String>,
    /// The first error a client saw, if any.
    pub first_error: Option<String>,
    /// The machine's CPU model (`/proc/cpuinfo`), since figures differ between models.
    pub cpu: String,
}

/// The CPU model named by `/proc/cpuinfo` ("unknown" elsewhere).
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Report {
    /// An empty report for `scenario`.
    pub fn new(scenario: &str, params: Value) -> Self {
        Self {
            scenario: scenario.to_owned(),
            params,
            rows: Vec::new(),
            failures: Vec::new(),
            first_error: None,
            cpu: cpu_model(),
        }
    }

    /// The figure of `metric`, if the report has it.
    pub fn value(&self, metric: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.metric == metric)
            .map(|r| r.value)
    }

    /// Adds a figure without a target.
    pub fn add(&mut self, metric: impl Into<String>, value: f64) {
        self.rows.push(Row {
            metric: metric.into(),
            value,
            target: None,
            met: None,
        });
    }

    /// Adds a figure that must be at most `limit`.
    pub fn at_most(&mut self, metric: impl Into<String>, value: f64, limit: f64) {
        self.rows.push(Row {
            metric: metric.into(),
            value,
            target: Some(format!("<= {limit}")),
            met: Some(value <= limit),
        });
    }

    /// Adds a figure that must be at least `floor`.
    pub fn at_least(&mut self, metric: impl Into<String>, value: f64, floor: f64) {
        self.rows.push(Row {
            metric: metric.into(),
            value,
            target: Some(format!(">= {floor}")),
            met: Some(value >= floor),
        });
    }

    /// Records a correctness failure when `count` is not zero.
    pub fn must_be_zero(&mut self, metric: &str, count: f64) {
        self.rows.push(Row {
            metric: metric.to_owned(),
            value: count,
            target: Some("= 0".into()),
            met: Some(count == 0.0),
        });
        if count != 0.0 {
            self.failures.push(format!("{metric}: {count}"));
        }
    }

    /// The table, one figure per line.
    pub fn table(&self) -> String {
        let mut out = format!("== {} == (CPU: {})\n", self.scenario, self.cpu);
        let width = self.rows.iter().map(|r| r.metric.len()).max().unwrap_or(0);
        for r in &self.rows {
            let value = if r.value.fract() == 0.0 && r.value.abs() < 1e15 {
                format!("{}", r.value as i64)
            } else {
                format!("{:.2}", r.value)
            };
            let target = match (&r.target, r.met) {
                (Some(t), Some(true)) => format!("  target {t}: met"),
                (Some(t), Some(false)) => format!("  target {t}: NOT MET"),
                _ => String::new(),
            };
            out.push_str(&format!("{:<width$}  {value:>12}{target}\n", r.metric));
        }
        if let Some(e) = &self.first_error {
            out.push_str(&format!("first client error: {e}\n"));
        }
        for f in &self.failures {
            out.push_str(&format!("FAILED: {f}\n"));
        }
        out
    }
}
