//! Prometheus metrics (activations by outcome, mints, ring reloads, request latency) and
//! the per-minute activation counters behind the console's activity chart.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::verify::Reason;

/// Labels of `mdtoken_activations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Labels of `mdtoken_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    activations: Family<OutcomeLabels, Counter>,
    mints: Counter,
    reloads: Counter,
    reload_failures: Counter,
    latency: Family<HttpLabels, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every series registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let activations = Family::<OutcomeLabels, Counter>::default();
        let mints = Counter::default();
        let reloads = Counter::default();
        let reload_failures = Counter::default();
        let latency: Family<HttpLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        // Counter names gain `_total` when encoded.
        registry.register(
            "mdtoken_activations",
            "Activation decisions by outcome (accepted or the rejection reason code)",
            activations.clone(),
        );
        registry.register(
            "mdtoken_mints",
            "Tokens minted, including automatic renewals",
            mints.clone(),
        );
        registry.register(
            "mdtoken_ring_reloads",
            "Key ring reloads that installed a new ring",
            reloads.clone(),
        );
        registry.register(
            "mdtoken_ring_reload_failures",
            "Key ring changes refused (the last good ring was kept)",
            reload_failures.clone(),
        );
        registry.register(
            "mdtoken_http_request_duration_seconds",
            "HTTP request latency by matched route, method and status",
            latency.clone(),
        );
        // Every outcome is present from the start, so rates work before the first event.
        let _ = activations.get_or_create(&OutcomeLabels {
            outcome: "accepted",
        });
        for reason in Reason::ALL {
            let _ = activations.get_or_create(&OutcomeLabels {
                outcome: reason.as_str(),
            });
        }
        Self {
            registry,
            activations,
            mints,
            reloads,
            reload_failures,
            latency,
        }
    }

    /// Counts one activation decision: `None` for accepted, else the reason.
    pub fn activation(&self, reason: Option<Reason>) {
        let outcome = reason.map_or("accepted", Reason::as_str);
        self.activations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Counts one minted token.
    pub fn mint(&self) {
        self.mints.inc();
    }

    /// Counts one ring reload that installed a new ring.
    pub fn reload(&self) {
        self.reloads.inc();
    }

    /// Counts one refused ring change.
    pub fn reload_failure(&self) {
        self.reload_failures.inc();
    }

    /// Records one request's latency.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One minute of activation outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteCounts {
    /// Unix time of the minute's start.
    pub minute: i64,
    /// Accepted activations.
    pub accepted: u64,
    /// Rejections for `token_expired`.
    pub expired: u64,
    /// Every other rejection.
    pub rejected: u64,
}

/// The last hour of activation outcomes, per minute, in memory.
#[derive(Debug)]
pub struct Activity {
    slots: Mutex<[MinuteCounts; 60]>,
}

impl Default for Activity {
    fn default() -> Self {
        Self {
            slots: Mutex::new(
                [MinuteCounts {
                    minute: i64::MIN,
                    ..MinuteCounts::default()
                }; 60],
            ),
        }
    }
}

impl Activity {
    /// Counts one decision at Unix time `now`.
    pub fn record(&self, now: i64, reason: Option<Reason>) {
        let minute = now.div_euclid(60) * 60;
        let index = now.div_euclid(60).rem_euclid(60) as usize;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut slots[index];
        if slot.minute != minute {
            *slot = MinuteCounts {
                minute,
                ..MinuteCounts::default()
            };
        }
        match reason {
            None => slot.accepted += 1,
            Some(Reason::TokenExpired) => slot.expired += 1,
            Some(_) => slot.rejected += 1,
        }
    }

    /// The 60 minutes ending with the one holding `now`, oldest first.
    pub fn last_hour(&self, now: i64) -> Vec<MinuteCounts> {
        let current = now.div_euclid(60);
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        (current - 59..=current)
            .map(|m| {
                let slot = slots[m.rem_euclid(60) as usize];
                if slot.minute == m * 60 {
                    slot
                } else {
                    MinuteCounts {
                        minute: m * 60,
                        ..MinuteCounts::default()
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_keeps_one_hour_per_minute() {
        let a = Activity::default();
        let t = 1_799_999_940; // a minute's start
        a.record(t, None);
        a.record(t + 59, Some(Reason::TokenExpired));
        a.record(t + 60, Some(Reason::BadSignature));
        let hour = a.last_hour(t + 60);
        assert_eq!(hour.len(), 60);
        assert_eq!(
            hour[58],
            MinuteCounts {
                minute: t,
                accepted: 1,
                expired: 1,
                rejected: 0
            }
        );
        assert_eq!(hour[59].rejected, 1);
        // An hour later the old minute's slot is reused, not added to.
        a.record(t + 3600, None);
        let hour = a.last_hour(t + 3600);
        assert_eq!(
            hour[59],
            MinuteCounts {
                minute: t + 3600,
                accepted: 1,
                expired: 0,
                rejected: 0
            }
        );
        assert!(
            hour[..59]
                .iter()
                .all(|m| m.accepted + m.expired + m.rejected == 0 || m.minute == t + 60)
        );
    }

    #[test]
    fn metrics_text_names() {
        let m = Metrics::new();
        m.activation(None);
        m.mint();
        m.request("/healthz", "GET", 200, 0.001);
        let text = m.encode();
        for name in [
            "mdtoken_activations_total{outcome=\"accepted\"} 1",
            "mdtoken_activations_total{outcome=\"token_expired\"} 0",
            "mdtoken_mints_total 1",
            "mdtoken_ring_reloads_total 0",
            "mdtoken_ring_reload_failures_total 0",
            "mdtoken_http_request_duration_seconds_bucket",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
