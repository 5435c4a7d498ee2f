//! The `[policy]` table: thresholds, tracker rules and their validation.

use std::collections::BTreeMap;

use ivrx_intel::trackers::{ABUSE, ASKS_FOR_HUMAN, BOT_FRUSTRATION, BUYING_SIGNAL, CHURN_RISK};
use serde::{Deserialize, Deserializer, Serialize};

use super::Reason;

/// Thresholds and rules, from the `[policy]` table of ivrx.toml.
///
/// ```toml
/// [policy]
/// floor = -0.4                 # smoothed level that escalates (default -0.35)
/// rapid_drop = 0.5             # fall of the level over `drop_window` utterances
///
/// [policy.trackers.buying_signal]
/// action = "ignore"            # rules merge over the defaults, tracker by tracker
///
/// [policy.trackers.legal_threat]
/// action = "transfer"
/// reason = "churn_risk"        # custom trackers name the reason they stand for
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Queue for escalations (frustration, requests for a human).
    pub support_queue: String,
    /// Queue for buying signals.
    pub sales_queue: String,
    /// Weight of the newest utterance in the smoothed level (an exponentially
    /// weighted moving average starting from neutral). Default 0.5; 1 means
    /// no smoothing.
    pub smoothing: f64,
    /// The call escalates when the smoothed level is at or below this.
    /// Default -0.35.
    pub floor: f64,
    /// How many earlier utterances the drop looks back over. Default 3.
    pub drop_window: u32,
    /// The call escalates when the level fell this much below its highest
    /// point in the window… Default 0.5.
    pub rapid_drop: f64,
    /// …and the level itself is at or below this (a fall from delighted to
    /// content is not a problem). Default -0.2.
    pub rapid_drop_level: f64,
    /// An utterance scoring at or below this counts as negative. Default -0.35.
    pub negative_score: f64,
    /// The call escalates after this many negative utterances in a row; 0
    /// turns the rule off. Default 3.
    pub consecutive_negatives: u32,
    /// An utterance scoring at or above this ends a run of negatives; one
    /// between this and `negative_score` (mildly negative) neither ends nor
    /// extends it. Default 0.0.
    pub negatives_reset_at: f64,
    /// The sentiment rules (floor, rapid decline, consecutive negatives) wait
    /// for this many utterances: one plainly stated problem is not a trend.
    /// Default 2. Tracker rules act from the first utterance.
    pub min_utterances: u32,
    /// For `when_negative` tracker rules, sentiment agrees when the utterance
    /// scores at or below this… Default -0.05.
    pub agree_negative_score: f64,
    /// …or the smoothed level (before or after the utterance) is at or below
    /// this. Default -0.25.
    pub agree_negative_level: f64,
    /// For `when_not_negative` rules (buying signals), the utterance must
    /// score at least this… Default 0.0.
    pub sales_min_score: f64,
    /// …and the smoothed level, before and after the utterance, at least this
    /// (a caller in the middle of a complaint is not a sales lead). Default -0.3.
    pub sales_min_level: f64,
    /// A request for a person in words no tracker lists ("whoever runs
    /// billing", "a member of your team") transfers like `asks_for_human`.
    /// Default true.
    pub person_phrasing: bool,
    /// Leaving in words no tracker lists ("i am done with you", "how do i
    /// quit") transfers like `churn_risk`. Default true.
    pub leaving_phrasing: bool,
    /// "No that is not what i said" is a sign of frustration. Default true.
    pub corrections: bool,
    /// An utterance repeats an earlier one, a sign of frustration, when their
    /// content words (filler and numbers aside) overlap this much (Jaccard,
    /// 0-1); 0 turns it off. Default 0.6.
    pub repeat_similarity: f64,
    /// How many earlier utterances a repeat is looked for in. Default 3.
    pub repeat_window: u32,
    /// A sign of frustration (a correction, a repeat, a hit of a tracker
    /// whose action is `evidence`) transfers when another sign, or a negative
    /// utterance, follows within this many utterances. Default 2.
    pub frustration_window: u32,
    /// …or at once when the utterance with the sign scores at or below
    /// this. Default -0.7.
    pub frustration_alone_score: f64,
    /// A rapid incline routes to sales: the level rose this much above its
    /// lowest point in the window (the neutral start included), the
    /// utterance scores at least `incline_min_score` and the caller wants
    /// something ("tell me more", "how do i get one", a buying-signal hit).
    /// 0 turns it off. Default 0.2.
    pub incline_rise: f64,
    /// The utterance's own score for a rapid incline. Default 0.1.
    pub incline_min_score: f64,
    /// Wanting something in plain words ("i would like to get my son his
    /// own phone") routes to sales when the utterance is above
    /// `mounting_prior`, the level at least `sales_min_level` and no problem
    /// was named, without a rise. Default true.
    pub interest_sales: bool,
    /// A buying-signal hit that only asks a price or what is on offer ("how
    /// much does it cost", "what deals") does not route to sales alone: it
    /// needs a rapid incline or words of wanting. Default true.
    pub price_needs_interest: bool,
    /// Mounting anger: an utterance at or below this, worse than every
    /// earlier one, transfers after an earlier utterance at or below
    /// `mounting_prior` or one that named a problem, or a fall of the level
    /// by `rapid_drop` from its peak.
    /// 0 turns it off. Default -0.5.
    pub mounting_score: f64,
    /// The earlier complaint mounting anger needs. Default -0.15.
    pub mounting_prior: f64,
    /// Mounting anger also fires, from `min_utterances` on, when an
    /// utterance at or below `mounting_prior` takes the call's grievance
    /// (its negative scores summed, back to 0 at an utterance at or above
    /// `grievance_relief`) to this: complaints that pile up without one being
    /// strong. 0 turns it off. Default 1.0.
    pub grievance: f64,
    /// An utterance at or above this clears the grievance. Default 0.3.
    pub grievance_relief: f64,
    /// An utterance that names a problem ("but the bill is wrong") is not a
    /// sales lead, whatever its praise or buying words. Default true.
    pub complaint_blocks_sales: bool,
    /// The key that asks for an operator (the support queue). Default "0".
    /// The other keys are the menu's (`[[ivr.menu]]`).
    pub operator_digit: String,
    /// What each tracker's hits do, by tracker name. Configured rules merge
    /// over the defaults ([`default_tracker_rules`]).
    #[serde(deserialize_with = "merge_tracker_rules")]
    pub trackers: BTreeMap<String, TrackerRule>,
    /// `sales_digit`, retired: keys are routed by the menu. Accepted so that
    /// older files still load; [`retired_keys`](Self::retired_keys) says what to do.
    #[doc(hidden)]
    #[serde(skip_serializing)]
    pub sales_digit: Option<Retired>,
}

/// The value of a retired key: accepted, whatever it is, and never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retired;

impl<'de> Deserialize<'de> for Retired {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Retired)
    }
}

/// A key of `[policy]` that is accepted but no longer read, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy.{key} is no longer read: {fix}")]
pub struct RetiredKey {
    /// The key under `[policy]`.
    pub key: &'static str,
    /// What to do instead.
    pub fix: &'static str,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            support_queue: "support".into(),
            sales_queue: "sales".into(),
            smoothing: 0.5,
            floor: -0.35,
            drop_window: 3,
            rapid_drop: 0.5,
            rapid_drop_level: -0.2,
            negative_score: -0.35,
            consecutive_negatives: 3,
            negatives_reset_at: 0.0,
            min_utterances: 2,
            agree_negative_score: -0.05,
            agree_negative_level: -0.25,
            sales_min_score: 0.0,
            sales_min_level: -0.3,
            person_phrasing: true,
            leaving_phrasing: true,
            corrections: true,
            repeat_similarity: 0.6,
            repeat_window: 3,
            frustration_window: 2,
            frustration_alone_score: -0.7,
            incline_rise: 0.2,
            incline_min_score: 0.1,
            interest_sales: true,
            price_needs_interest: true,
            mounting_score: -0.5,
            mounting_prior: -0.15,
            grievance: 1.0,
            grievance_relief: 0.3,
            complaint_blocks_sales: true,
            operator_digit: "0".into(),
            trackers: default_tracker_rules(),
            sales_digit: None,
        }
    }
}

/// What a tracker hit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackerAction {
    /// Transfer at once.
    Transfer,
    /// Transfer when sentiment agrees (the utterance or the level is negative).
    WhenNegative,
    /// Transfer when sentiment is not negative (buying signals).
    WhenNotNegative,
    /// A sign of frustration: transfers with a second sign or a negative
    /// utterance within `frustration_window`, or at once when strongly
    /// negative (`frustration_alone_score`).
    Evidence,
    /// Do nothing (the hit is still recorded with the score).
    Ignore,
}

/// The rule for one tracker (`[policy.trackers.<name>]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerRule {
    /// What a hit does.
    pub action: TrackerAction,
    /// The queue; unset means `sales_queue` for buying signals and
    /// `support_queue` for everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The reason recorded; unset means the built-in tracker's own reason.
    /// Required for custom trackers that act.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

impl TrackerRule {
    /// A rule with the default queue and reason.
    pub fn new(action: TrackerAction) -> Self {
        Self { action, queue: None, reason: None }
    }
}

/// The default rules: a request for a person, abuse and churn risk transfer
/// to support at once; bot frustration is a sign of frustration that a second sign confirms; a buying signal
/// with non-negative sentiment transfers to sales.
pub fn default_tracker_rules() -> BTreeMap<String, TrackerRule> {
    [
        (ASKS_FOR_HUMAN, TrackerAction::Transfer),
        (ABUSE, TrackerAction::Transfer),
        (CHURN_RISK, TrackerAction::Transfer),
        (BOT_FRUSTRATION, TrackerAction::Evidence),
        (BUYING_SIGNAL, TrackerAction::WhenNotNegative),
    ]
    .into_iter()
    .map(|(name, action)| (name.to_string(), TrackerRule::new(action)))
    .collect()
}

/// The reason a built-in tracker stands for.
pub fn builtin_reason(tracker: &str) -> Option<Reason> {
    Some(match tracker {
        ASKS_FOR_HUMAN => Reason::AskedForHuman,
        ABUSE => Reason::Abuse,
        BOT_FRUSTRATION => Reason::BotFrustration,
        CHURN_RISK => Reason::ChurnRisk,
        BUYING_SIGNAL => Reason::BuyingSignal,
        _ => return None,
    })
}

fn merge_tracker_rules<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, TrackerRule>, D::Error> {
    let configured = BTreeMap::<String, TrackerRule>::deserialize(d)?;
    let mut rules = default_tracker_rules();
    rules.extend(configured);
    Ok(rules)
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy.{key}: {message}")]
pub struct PolicyConfigError {
    /// The offending key under `[policy]`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> PolicyConfigError {
    PolicyConfigError { key: key.into(), message: message.into() }
}

fn in_range(key: &str, value: f64, lo: f64, hi: f64) -> Result<(), PolicyConfigError> {
    if !value.is_finite() || value < lo || value > hi {
        return Err(err(key, format!("must be between {lo} and {hi}, got {value}")));
    }
    Ok(())
}

fn queue_name(key: &str, value: &str) -> Result<(), PolicyConfigError> {
    if value.trim().is_empty() {
        return Err(err(key, "must name a queue, e.g. \"support\""));
    }
    if value.chars().any(char::is_control) {
        return Err(err(key, format!("must not contain control characters, got {value:?}")));
    }
    Ok(())
}

fn digit(key: &str, value: &str) -> Result<(), PolicyConfigError> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if ivrx_telnyx::dtmf::is_dtmf(c) => Ok(()),
        _ => Err(err(key, format!("must be one DTMF key (0-9, *, #, A-D), got {value:?}"))),
    }
}

impl PolicyConfig {
    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        queue_name("support_queue", &self.support_queue)?;
        queue_name("sales_queue", &self.sales_queue)?;
        if !self.smoothing.is_finite() || self.smoothing <= 0.0 || self.smoothing > 1.0 {
            return Err(err(
                "smoothing",
                format!("must be above 0 and at most 1 (1 = no smoothing), got {}", self.smoothing),
            ));
        }
        in_range("floor", self.floor, -1.0, 0.0)?;
        if self.drop_window == 0 || self.drop_window > 20 {
            return Err(err("drop_window", format!("must be between 1 and 20 utterances, got {}", self.drop_window)));
        }
        if !self.rapid_drop.is_finite() || self.rapid_drop <= 0.0 || self.rapid_drop > 2.0 {
            return Err(err("rapid_drop", format!("must be above 0 and at most 2, got {}", self.rapid_drop)));
        }
        in_range("rapid_drop_level", self.rapid_drop_level, -1.0, 1.0)?;
        in_range("negative_score", self.negative_score, -1.0, 0.0)?;
        if self.consecutive_negatives > 50 {
            return Err(err(
                "consecutive_negatives",
                format!("must be between 0 (off) and 50, got {}", self.consecutive_negatives),
            ));
        }
        in_range("negatives_reset_at", self.negatives_reset_at, -1.0, 1.0)?;
        if self.negatives_reset_at <= self.negative_score {
            return Err(err(
                "negatives_reset_at",
                format!("must be above negative_score ({}), got {}", self.negative_score, self.negatives_reset_at),
            ));
        }
        if self.min_utterances == 0 || self.min_utterances > 50 {
            return Err(err("min_utterances", format!("must be between 1 and 50, got {}", self.min_utterances)));
        }
        in_range("agree_negative_score", self.agree_negative_score, -1.0, 1.0)?;
        in_range("agree_negative_level", self.agree_negative_level, -1.0, 1.0)?;
        in_range("sales_min_score", self.sales_min_score, -1.0, 1.0)?;
        in_range("sales_min_level", self.sales_min_level, -1.0, 1.0)?;
        in_range("repeat_similarity", self.repeat_similarity, 0.0, 1.0)?;
        if self.repeat_window == 0 || self.repeat_window > 20 {
            return Err(err(
                "repeat_window",
                format!("must be between 1 and 20 utterances, got {}", self.repeat_window),
            ));
        }
        if self.frustration_window == 0 || self.frustration_window > 20 {
            return Err(err(
                "frustration_window",
                format!("must be between 1 and 20 utterances, got {}", self.frustration_window),
            ));
        }
        in_range("frustration_alone_score", self.frustration_alone_score, -1.0, 0.0)?;
        in_range("incline_rise", self.incline_rise, 0.0, 2.0)?;
        in_range("incline_min_score", self.incline_min_score, -1.0, 1.0)?;
        in_range("mounting_score", self.mounting_score, -1.0, 0.0)?;
        in_range("mounting_prior", self.mounting_prior, -1.0, 0.0)?;
        in_range("grievance", self.grievance, 0.0, 20.0)?;
        in_range("grievance_relief", self.grievance_relief, -1.0, 1.0)?;
        digit("operator_digit", &self.operator_digit)?;
        for (name, rule) in &self.trackers {
            let key = |field: &str| format!("trackers.{name}.{field}");
            if let Some(q) = &rule.queue {
                queue_name(&key("queue"), q)?;
            }
            if rule.action != TrackerAction::Ignore && rule.reason.is_none() && builtin_reason(name).is_none() {
                return Err(err(
                    key("reason"),
                    "a custom tracker that acts needs a reason, e.g. reason = \"churn_risk\" \
                     (asked_for_human, abuse, bot_frustration, churn_risk, buying_signal, …)",
                ));
            }
        }
        Ok(())
    }

    /// The keys set in this table that are accepted but no longer read.
    pub fn retired_keys(&self) -> Vec<RetiredKey> {
        let mut keys = Vec::new();
        if self.sales_digit.is_some() {
            keys.push(RetiredKey {
                key: "sales_digit",
                fix: "keys are routed by the menu: remove the line, and to change the sales key set `digit` \
                      on the [[ivr.menu]] entry with queue = \"sales\" (key 3 by default)",
            });
        }
        keys
    }

    /// These settings with the escalation signals off: no phrasing cues, no
    /// corrections or repeats, no incline, no mounting anger, no complaint
    /// check on sales, and bot frustration back to transferring when sentiment
    /// agrees. The policy as it was before them, for comparison.
    pub fn without_signals(mut self) -> Self {
        self.person_phrasing = false;
        self.leaving_phrasing = false;
        self.corrections = false;
        self.repeat_similarity = 0.0;
        self.incline_rise = 0.0;
        self.interest_sales = false;
        self.price_needs_interest = false;
        self.mounting_score = 0.0;
        self.grievance = 0.0;
        self.complaint_blocks_sales = false;
        if let Some(rule) = self.trackers.get_mut(BOT_FRUSTRATION).filter(|r| r.action == TrackerAction::Evidence) {
            rule.action = TrackerAction::WhenNegative;
        }
        self
    }

    /// True when a rule reads the utterance's words (cues or repeats), not
    /// only its score and tracker hits.
    pub fn reads_words(&self) -> bool {
        self.person_phrasing
            || self.leaving_phrasing
            || self.corrections
            || self.repeat_similarity > 0.0
            || self.incline_rise > 0.0
            || self.interest_sales
            || self.complaint_blocks_sales
    }

    /// The rule for a tracker, if it has one.
    pub fn tracker_rule(&self, tracker: &str) -> Option<&TrackerRule> {
        self.trackers.get(tracker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        PolicyConfig::default().validate().unwrap();
    }

    #[test]
    fn validation_names_the_key_and_the_fix() {
        type Case = (fn(&mut PolicyConfig), &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (|c| c.floor = 0.4, "floor", "must be between -1 and 0, got 0.4"),
            (|c| c.floor = f64::NAN, "floor", "got NaN"),
            (|c| c.smoothing = 0.0, "smoothing", "above 0"),
            (|c| c.drop_window = 0, "drop_window", "between 1 and 20"),
            (|c| c.rapid_drop = -0.1, "rapid_drop", "above 0"),
            (|c| c.negative_score = 0.2, "negative_score", "between -1 and 0"),
            (|c| c.consecutive_negatives = 99, "consecutive_negatives", "0 (off)"),
            (|c| c.min_utterances = 0, "min_utterances", "between 1 and 50"),
            (|c| c.negatives_reset_at = -0.5, "negatives_reset_at", "above negative_score"),
            (|c| c.support_queue = " ".into(), "support_queue", "must name a queue"),
            (|c| c.operator_digit = "00".into(), "operator_digit", "one DTMF key"),
            (|c| c.sales_min_level = 3.0, "sales_min_level", "between -1 and 1"),
            (|c| c.repeat_similarity = 1.5, "repeat_similarity", "between 0 and 1"),
            (|c| c.repeat_window = 0, "repeat_window", "between 1 and 20"),
            (|c| c.frustration_window = 21, "frustration_window", "between 1 and 20"),
            (|c| c.frustration_alone_score = 0.2, "frustration_alone_score", "between -1 and 0"),
            (|c| c.incline_rise = -0.1, "incline_rise", "between 0 and 2"),
            (|c| c.incline_min_score = f64::INFINITY, "incline_min_score", "between -1 and 1"),
            (|c| c.mounting_score = 0.2, "mounting_score", "between -1 and 0"),
            (
                |c| {
                    c.trackers.insert("legal".into(), TrackerRule::new(TrackerAction::Transfer));
                },
                "trackers.legal.reason",
                "needs a reason",
            ),
            (
                |c| {
                    c.trackers.get_mut("abuse").unwrap().queue = Some(String::new());
                },
                "trackers.abuse.queue",
                "must name a queue",
            ),
        ];
        for (mutate, key, needle) in cases {
            let mut c = PolicyConfig::default();
            mutate(&mut c);
            let e = c.validate().unwrap_err();
            assert_eq!(e.key, key);
            assert!(e.message.contains(needle), "{key}: {}", e.message);
            assert!(e.to_string().starts_with(&format!("policy.{key}: ")));
        }
    }

    #[test]
    fn reads_the_policy_table_and_merges_tracker_rules() {
        #[derive(Deserialize)]
        struct File {
            policy: PolicyConfig,
        }
        let f: File = toml::from_str(
            r#"
            [policy]
            floor = -0.6
            support_queue = "care"
            repeat_similarity = 0.0
            person_phrasing = false
            [policy.trackers.buying_signal]
            action = "ignore"
            [policy.trackers.legal]
            action = "transfer"
            reason = "churn_risk"
            queue = "retention"
            "#,
        )
        .unwrap();
        let c = f.policy;
        c.validate().unwrap();
        assert_eq!(c.floor, -0.6);
        assert_eq!(c.support_queue, "care");
        assert_eq!(c.smoothing, 0.5);
        assert_eq!((c.repeat_similarity, c.person_phrasing, c.leaving_phrasing), (0.0, false, true));
        assert_eq!(c.trackers["bot_frustration"].action, TrackerAction::Evidence);
        assert_eq!(c.trackers["buying_signal"].action, TrackerAction::Ignore);
        assert_eq!(c.trackers["asks_for_human"].action, TrackerAction::Transfer);
        assert_eq!(c.trackers["legal"].reason, Some(Reason::ChurnRisk));
        assert_eq!(c.trackers.len(), 6);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<PolicyConfig>("flor = -0.5").is_err());
        assert!(toml::from_str::<PolicyConfig>("[trackers.abuse]\naction = \"transfer\"\nqueu = \"x\"").is_err());
        assert!(toml::from_str::<PolicyConfig>("[trackers.abuse]\naction = \"sometimes\"").is_err());
    }

    #[test]
    fn a_retired_key_still_loads_and_says_what_to_do() {
        for value in ["\"3\"", "5", "\"x\""] {
            let c: PolicyConfig = toml::from_str(&format!("sales_digit = {value}\nfloor = -0.5")).unwrap();
            c.validate().unwrap();
            assert_eq!(c.floor, -0.5);
            let retired = c.retired_keys();
            assert_eq!(retired.len(), 1);
            let message = retired[0].to_string();
            assert!(message.starts_with("policy.sales_digit is no longer read: "), "{message}");
            assert!(message.contains("[[ivr.menu]]") && message.contains("remove the line"), "{message}");
            assert!(!toml::to_string(&c).unwrap().contains("sales_digit"), "never written back");
        }
        assert!(PolicyConfig::default().retired_keys().is_empty());
    }

    #[test]
    fn round_trips_through_toml() {
        let c = PolicyConfig::default();
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<PolicyConfig>(&text).unwrap(), c);
    }
}
