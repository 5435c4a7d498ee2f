//! Fault injection: webhooks duplicated, reordered and delayed, REST
//! answers that fail (500), throttle (429), come late, or never come (the
//! connection is dropped, before or after the command ran), and SMS refused
//! (422), answered late or never delivered. Every decision comes
//! from a seeded random generator so a run can be reproduced; delivery uses one
//! generator per call session, so one call's faults do not depend on how other
//! calls interleave.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Chaos knobs (`ivrx sandbox` flags, `[sandbox.chaos]` in `ivrx.toml`). All
/// rates are probabilities in `0..=1`; the default is calm.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Chaos {
    /// Fraction of webhooks delivered a second time (same `data.id`, freshly signed).
    pub duplicate_rate: f64,
    /// Fraction of webhooks swapped with the next webhook of the same call.
    pub reorder_rate: f64,
    /// Up to this many milliseconds of random delay before each delivery.
    pub max_delay_ms: u64,
    /// Seed for reproducible runs; a random seed when `None`.
    pub seed: Option<u64>,
    /// Fraction of REST requests answered `500` without being executed.
    pub api_error_rate: f64,
    /// Fraction of REST requests answered `429` with `Retry-After`.
    pub api_rate_limit_rate: f64,
    /// Fraction of REST requests executed but answered late ([`api_late_ms`](Self::api_late_ms)).
    pub api_timeout_rate: f64,
    /// How late a late answer is, in real milliseconds (4000: past a 3 s client timeout).
    pub api_late_ms: u64,
    /// Fraction of REST requests whose connection is dropped before the command runs (no answer).
    pub api_drop_rate: f64,
    /// Fraction of REST requests whose command runs, then the connection is dropped (no answer).
    pub api_drop_after_rate: f64,
    /// Fraction of SMS (`POST /v2/messages`) refused with `422` (not routable).
    pub message_refuse_rate: f64,
    /// Fraction of SMS queued but answered late ([`api_late_ms`](Self::api_late_ms)).
    pub message_timeout_rate: f64,
    /// Fraction of SMS whose `message.finalized` says `delivery_failed`.
    pub message_fail_rate: f64,
}

impl Default for Chaos {
    fn default() -> Self {
        Self {
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            max_delay_ms: 0,
            seed: None,
            api_error_rate: 0.0,
            api_rate_limit_rate: 0.0,
            api_timeout_rate: 0.0,
            api_late_ms: 4000,
            api_drop_rate: 0.0,
            api_drop_after_rate: 0.0,
            message_refuse_rate: 0.0,
            message_timeout_rate: 0.0,
            message_fail_rate: 0.0,
        }
    }
}

/// A chaos setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chaos `{field}` must be a probability between 0 and 1, got {value}")]
pub struct ChaosError {
    /// The field.
    pub field: &'static str,
    /// Its value.
    pub value: String,
}

impl Chaos {
    /// Checks that every rate is a probability.
    pub fn validate(&self) -> Result<(), ChaosError> {
        for (field, v) in [
            ("duplicate_rate", self.duplicate_rate),
            ("reorder_rate", self.reorder_rate),
            ("api_error_rate", self.api_error_rate),
            ("api_rate_limit_rate", self.api_rate_limit_rate),
            ("api_timeout_rate", self.api_timeout_rate),
            ("api_drop_rate", self.api_drop_rate),
            ("api_drop_after_rate", self.api_drop_after_rate),
            ("message_refuse_rate", self.message_refuse_rate),
            ("message_timeout_rate", self.message_timeout_rate),
            ("message_fail_rate", self.message_fail_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ChaosError { field, value: v.to_string() });
            }
        }
        Ok(())
    }

    /// True when delivery needs no random decisions at all.
    pub(crate) fn delivery_is_calm(&self) -> bool {
        self.duplicate_rate == 0.0 && self.reorder_rate == 0.0 && self.max_delay_ms == 0
    }

    /// True when the REST API needs no random decisions.
    pub(crate) fn api_is_calm(&self) -> bool {
        self.api_error_rate == 0.0
            && self.api_rate_limit_rate == 0.0
            && self.api_timeout_rate == 0.0
            && self.api_drop_rate == 0.0
            && self.api_drop_after_rate == 0.0
    }
}

/// What chaos does to one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DeliveryPlan {
    pub delay_ms: u64,
    pub duplicate: bool,
    pub reorder: bool,
}

/// What chaos does to one REST request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiFault {
    ServerError,
    RateLimited,
    Late,
    /// The connection is closed without an answer; `executed` says whether
    /// the command ran first.
    Dropped {
        executed: bool,
    },
}

/// What chaos does to one SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageFault {
    /// Refused with `422`.
    Refused,
    /// Queued, answered late.
    Late,
    /// Queued, then its delivery fails.
    Undelivered,
}

/// A seeded generator of chaos decisions.
#[derive(Debug)]
pub(crate) struct ChaosRng(StdRng);

impl ChaosRng {
    /// The generator for a stream (`0` for the REST API, a session number for
    /// a call's webhooks).
    pub fn new(seed: Option<u64>, stream: u64) -> Self {
        match seed {
            Some(s) => Self(StdRng::seed_from_u64(s ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))),
            None => Self(StdRng::from_entropy()),
        }
    }

    fn hit(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.0.gen_bool(rate.clamp(0.0, 1.0))
    }

    /// Decisions for the next webhook.
    pub fn delivery(&mut self, c: &Chaos) -> DeliveryPlan {
        if c.delivery_is_calm() {
            return DeliveryPlan::default();
        }
        DeliveryPlan {
            delay_ms: if c.max_delay_ms > 0 { self.0.gen_range(0..=c.max_delay_ms) } else { 0 },
            duplicate: self.hit(c.duplicate_rate),
            reorder: self.hit(c.reorder_rate),
        }
    }

    /// The fault for the next SMS, if any.
    pub fn message(&mut self, c: &Chaos) -> Option<MessageFault> {
        if self.hit(c.message_refuse_rate) {
            Some(MessageFault::Refused)
        } else if self.hit(c.message_timeout_rate) {
            Some(MessageFault::Late)
        } else if self.hit(c.message_fail_rate) {
            Some(MessageFault::Undelivered)
        } else {
            None
        }
    }

    /// The fault for the next REST request, if any.
    pub fn api(&mut self, c: &Chaos) -> Option<ApiFault> {
        if c.api_is_calm() {
            return None;
        }
        if self.hit(c.api_error_rate) {
            Some(ApiFault::ServerError)
        } else if self.hit(c.api_rate_limit_rate) {
            Some(ApiFault::RateLimited)
        } else if self.hit(c.api_timeout_rate) {
            Some(ApiFault::Late)
        } else if self.hit(c.api_drop_rate) {
            Some(ApiFault::Dropped { executed: false })
        } else if self.hit(c.api_drop_after_rate) {
            Some(ApiFault::Dropped { executed: true })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(seed: u64, stream: u64, c: &Chaos) -> Vec<DeliveryPlan> {
        let mut r = ChaosRng::new(Some(seed), stream);
        (0..200).map(|_| r.delivery(c)).collect()
    }

    #[test]
    fn a_fixed_seed_reproduces_every_decision() {
        let c = Chaos { duplicate_rate: 0.3, reorder_rate: 0.2, max_delay_ms: 50, seed: Some(7), ..Chaos::default() };
        assert_eq!(plans(7, 3, &c), plans(7, 3, &c));
        assert_ne!(plans(7, 3, &c), plans(7, 4, &c), "sessions get their own streams");
        assert_ne!(plans(7, 3, &c), plans(8, 3, &c));
        let p = plans(7, 3, &c);
        let dups = p.iter().filter(|p| p.duplicate).count();
        let reorders = p.iter().filter(|p| p.reorder).count();
        assert!((30..=90).contains(&dups), "{dups}");
        assert!((15..=70).contains(&reorders), "{reorders}");
        assert!(p.iter().all(|p| p.delay_ms <= 50));
    }

    #[test]
    fn calm_chaos_decides_nothing() {
        let c = Chaos::default();
        assert!(plans(1, 1, &c).iter().all(|p| *p == DeliveryPlan::default()));
        let mut r = ChaosRng::new(None, 0);
        assert!((0..100).all(|_| r.api(&c).is_none()));
    }

    #[test]
    fn certain_rates_always_fire() {
        let c = Chaos { duplicate_rate: 1.0, api_rate_limit_rate: 1.0, ..Chaos::default() };
        assert!(plans(1, 1, &c).iter().all(|p| p.duplicate && !p.reorder));
        let mut r = ChaosRng::new(Some(1), 0);
        assert_eq!(r.api(&c), Some(ApiFault::RateLimited));
        let drop = Chaos { api_drop_rate: 1.0, ..Chaos::default() };
        assert_eq!(r.api(&drop), Some(ApiFault::Dropped { executed: false }));
        let after = Chaos { api_drop_after_rate: 1.0, ..Chaos::default() };
        assert_eq!(r.api(&after), Some(ApiFault::Dropped { executed: true }));
        assert_eq!(r.message(&Chaos::default()), None);
        assert_eq!(r.message(&Chaos { message_refuse_rate: 1.0, ..Chaos::default() }), Some(MessageFault::Refused));
        assert_eq!(r.message(&Chaos { message_timeout_rate: 1.0, ..Chaos::default() }), Some(MessageFault::Late));
        let fail = Chaos { message_fail_rate: 1.0, ..Chaos::default() };
        assert_eq!(r.message(&fail), Some(MessageFault::Undelivered));
        assert!(fail.validate().is_ok());
        assert_eq!(Chaos { message_fail_rate: 1.1, ..fail }.validate().unwrap_err().field, "message_fail_rate");
    }

    #[test]
    fn rates_outside_zero_one_are_refused() {
        assert!(Chaos::default().validate().is_ok());
        let e = Chaos { reorder_rate: 1.5, ..Chaos::default() }.validate().unwrap_err();
        assert_eq!(e.field, "reorder_rate");
        assert!(Chaos { api_error_rate: f64::NAN, ..Chaos::default() }.validate().is_err());
        assert!(Chaos { duplicate_rate: -0.1, ..Chaos::default() }.validate().is_err());
        assert_eq!(Chaos { api_drop_rate: 2.0, ..Chaos::default() }.validate().unwrap_err().field, "api_drop_rate");
    }
}
