//! The escalation policy: looks at the stream of scored caller utterances, not
//! at one message, and decides (once per call) whether and where to transfer.
//!
//! A plain function of its inputs: [`observe`] takes the configuration, the
//! running state and the next utterance, and returns the updated numbers and,
//! at most once per call, a [`Decision`] with its reason and the numbers behind it.
//!
//! The rules, with their defaults (all in [`PolicyConfig`]):
//!
//! | rule | fires when | reason | queue |
//! |---|---|---|---|
//! | tracker `asks_for_human`, `abuse`, `churn_risk` | any hit | its own | support |
//! | a request for a person or leaving, in other words ([`cues`]) | a hit | `asked_for_human`, `churn_risk` | support |
//! | signs of frustration: tracker `bot_frustration`, a correction, a repeat of an earlier utterance (content words, Jaccard ≥ 0.6) | a second sign or a negative utterance (≤ -0.05) within 2 utterances; at once when the sign's utterance ≤ -0.7 | `bot_frustration`, `correction`, `repetition` | support |
//! | tracker `buying_signal` | a hit that is more than a price or offers question ("how much does", "what deals"), the utterance ≥ 0, the level ≥ -0.3 and no problem named in the utterance | `buying_signal` | sales |
//! | rapid incline | the level rose ≥ 0.2 above its lowest in the window, the utterance ≥ 0.1 and wants something ("tell me more"), no problem named | `rapid_incline` | sales |
//! | plain interest | the utterance wants something ("i would like to get", "we want something faster"), scores above -0.15, the level ≥ -0.3, no problem named | `buying_signal` | sales |
//! | mounting anger | the utterance ≤ -0.5 and worse than every earlier one, after an earlier one ≤ -0.15 or naming a problem, or a fall of the level ≥ 0.5 below its peak; or the grievance (negative scores summed since the last utterance ≥ 0.3) ≥ 1.0 and the utterance ≤ -0.15 | `mounting_anger` | support |
//! | rapid decline | the level fell ≥ 0.5 below its peak over the last 3 utterances and is ≤ -0.2 | `rapid_decline` | support |
//! | floor | the level (EWMA, weight 0.5, from neutral) ≤ -0.35 | `sentiment_floor` | support |
//! | consecutive negatives | 3 utterances ≤ -0.35 in a row (mildly negative ones between them neither count nor break the run; one ≥ 0 breaks it) | `consecutive_negatives` | support |
//!
//! The sentiment rules wait for 2 utterances: one plainly stated problem is not
//! a trend. Tracker rules act at once; one mild sign of frustration waits for
//! one more utterance of evidence. Keys pressed at the menu are routed by
//! the menu ([`crate::keypad`]); their decisions go through the same
//! [`claim`] as the policy's own.

mod config;

use serde::{Deserialize, Serialize};

pub use config::{
    builtin_reason, default_tracker_rules, PolicyConfig, PolicyConfigError, Retired, RetiredKey, TrackerAction,
    TrackerRule,
};
use ivrx_intel::cues::{self, Cue, Cues};
use ivrx_intel::trackers::{ASKS_FOR_HUMAN, BUYING_SIGNAL, CHURN_RISK};
use ivrx_intel::{Normalized, Score, TrackerHit};

/// The running state of the policy for one call. Serialisable, so a call can
/// be resumed after a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyState {
    /// Caller utterances observed.
    pub utterances: u32,
    /// True once a decision was made: the policy's own rules decide once per call.
    pub decided: bool,
    /// True when the transfer of the decision failed (no agent could be
    /// reached): the caller or a supervisor may ask again ([`reopen`]).
    pub reopened: bool,
    /// The smoothed sentiment level (starts neutral).
    pub level: f64,
    /// The levels before the current one, oldest first, at most
    /// `drop_window` of them.
    pub recent_levels: Vec<f64>,
    /// Negative utterances in a row, up to the latest (mildly negative ones
    /// in between neither count nor break the run).
    pub consecutive_negatives: u32,
    /// The call's decision, once made: the one copy the session reads.
    pub decision: Option<Decision>,
    /// The content words of the latest utterances, oldest first, at most
    /// `repeat_window` of them: what a repeat is looked for in.
    pub recent_words: Vec<Vec<String>>,
    /// The latest sign of frustration not yet acted on.
    pub sign: Option<Sign>,
    /// The lowest utterance score so far (0 before any negative one).
    pub lowest_score: f64,
    /// The utterance (count) that last named a problem, 0 for none.
    pub last_complaint: u32,
    /// The call's grievance: how negative its utterances were, summed since
    /// the last one at or above `grievance_relief`.
    pub grievance: f64,
}

/// A sign of frustration that waits for one more utterance of evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sign {
    /// The caller utterance (count) it came with.
    pub at: u32,
    /// What it stands for.
    pub reason: Reason,
    /// What the caller said.
    pub phrase: String,
    /// The tracker, when a tracker hit is the sign.
    pub tracker: Option<String>,
}

/// One scored caller utterance, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Utterance<'a> {
    /// 1-based index among the caller's utterances in this call.
    pub index: u32,
    /// The text.
    pub text: &'a str,
    /// The engine's score.
    pub score: &'a Score,
    /// Milliseconds since the call started.
    pub offset_ms: u64,
}

/// The numbers the policy tracks, after an utterance. Shown live by `watch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    /// The utterance's own score.
    pub score: f64,
    /// Smoothed sentiment level.
    pub level: f64,
    /// Drop of the level over the recent window (positive = worse).
    pub drop: f64,
    /// Consecutive negative utterances, this one included (mildly negative
    /// ones in between neither count nor break the run).
    pub consecutive_negatives: u32,
    /// How far each threshold is (positive = not reached yet).
    pub distance_to_floor: f64,
    /// How far the rapid-decline threshold is.
    pub distance_to_drop: f64,
    /// The highest level in the window, which the drop is measured from.
    #[serde(default)]
    pub peak: f64,
    /// Caller utterances observed so far, this one included.
    #[serde(default)]
    pub utterances: u32,
    /// How much the utterance repeats the most similar recent one (content
    /// words, Jaccard 0-1). Left out of JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeat: f64,
    /// How far the level rose above its lowest point in the window. Left
    /// out of JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rise: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Why a call is transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The caller asked for a person (operator, agent, representative, …).
    AskedForHuman,
    /// Profanity or insults.
    Abuse,
    /// The caller is fed up with the bot.
    BotFrustration,
    /// The caller threatens to leave (cancel, lawyer).
    ChurnRisk,
    /// A positive buying signal: route to sales.
    BuyingSignal,
    /// The smoothed level fell fast over the recent window.
    RapidDecline,
    /// The smoothed level crossed the absolute floor.
    SentimentFloor,
    /// Too many negative utterances in a row.
    ConsecutiveNegatives,
    /// The caller corrected the system, and another sign followed.
    Correction,
    /// The caller repeated an earlier request, and another sign followed.
    Repetition,
    /// Sentiment rose quickly and the caller wants something: route to sales.
    RapidIncline,
    /// A complaint worse than every earlier one, after an earlier complaint
    /// or a fall from a good mood: anger building in plain words.
    MountingAnger,
    /// The caller pressed 0.
    Operator,
    /// The caller chose a queue from the IVR menu.
    MenuChoice,
    /// A supervisor used `ivrx transfer`.
    Manual,
}

impl Reason {
    /// The snake_case name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AskedForHuman => "asked_for_human",
            Reason::Abuse => "abuse",
            Reason::BotFrustration => "bot_frustration",
            Reason::ChurnRisk => "churn_risk",
            Reason::BuyingSignal => "buying_signal",
            Reason::RapidDecline => "rapid_decline",
            Reason::SentimentFloor => "sentiment_floor",
            Reason::ConsecutiveNegatives => "consecutive_negatives",
            Reason::Correction => "correction",
            Reason::Repetition => "repetition",
            Reason::RapidIncline => "rapid_incline",
            Reason::MountingAnger => "mounting_anger",
            Reason::Operator => "operator",
            Reason::MenuChoice => "menu_choice",
            Reason::Manual => "manual",
        }
    }

    /// A short sentence for people ("the caller asked for a person").
    pub fn describe(self) -> &'static str {
        match self {
            Reason::AskedForHuman => "the caller asked for a person",
            Reason::Abuse => "the caller used abusive language",
            Reason::BotFrustration => "the caller is frustrated with the automated system",
            Reason::ChurnRisk => "the caller may leave (cancellation or legal threat)",
            Reason::BuyingSignal => "the caller is interested in buying",
            Reason::RapidDecline => "sentiment fell quickly",
            Reason::SentimentFloor => "sentiment fell below the floor",
            Reason::ConsecutiveNegatives => "several negative statements in a row",
            Reason::Correction => "the caller corrected the system and stayed unhappy",
            Reason::Repetition => "the caller repeated the same request",
            Reason::RapidIncline => "the caller warmed up quickly and wants to buy",
            Reason::MountingAnger => "the caller's complaints are getting stronger",
            Reason::Operator => "the caller pressed 0 for an operator",
            Reason::MenuChoice => "the caller chose this queue from the menu",
            Reason::Manual => "a supervisor transferred the call",
        }
    }
}

/// A decision to transfer, with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Why.
    pub reason: Reason,
    /// Which queue.
    pub queue: String,
    /// 1-based index of the caller utterance that triggered it.
    pub trigger_index: u32,
    /// The utterance's text.
    pub trigger_text: String,
    /// The phrase that mattered (a tracker phrase), when there is one.
    pub trigger_phrase: Option<String>,
    /// The tracker that fired, when there is one.
    pub tracker: Option<String>,
    /// The numbers at the moment of the decision.
    pub numbers: PolicySnapshot,
}

/// The policy's view after one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The updated numbers.
    pub snapshot: PolicySnapshot,
    /// A decision, at most once per call.
    pub decision: Option<Decision>,
}

/// Feeds one caller utterance to the policy: updates the numbers and, if the
/// call has not been decided yet, applies the rules in order: tracker rules
/// that transfer at once, then those that need negative sentiment, then
/// those that need non-negative sentiment; requests for a person and leaving
/// in other words ([`cues`]); signs of frustration; a rapid incline; and the
/// sentiment rules (rapid decline, floor, consecutive negatives; only from
/// `min_utterances` on). A decision is [claimed](claim) before it is
/// returned: it is the call's.
pub fn observe(config: &PolicyConfig, state: &mut PolicyState, utterance: &Utterance<'_>) -> Observation {
    let norm = config.reads_words().then(|| Normalized::new(utterance.text));
    let lowest_before = state.lowest_score;
    let snapshot = track_normalized(config, state, utterance, norm.as_ref());
    let decision = if state.decided {
        None
    } else {
        let cues = norm.as_ref().map(cues::detect_normalized).unwrap_or_default();
        let found = tracker_decision(config, state, utterance, &snapshot, &cues)
            .or_else(|| phrasing_decision(config, utterance, &snapshot, &cues))
            .or_else(|| frustration_decision(config, state, utterance, &snapshot, &cues))
            .or_else(|| incline_decision(config, state, utterance, &snapshot, &cues))
            .or_else(|| sentiment_decision(config, state, utterance, &snapshot))
            .or_else(|| mounting_decision(config, state, lowest_before, utterance, &snapshot, &cues));
        if cues.has(Cue::Complaint) {
            state.last_complaint = state.utterances;
        }
        found.and_then(|d| claim(state, d))
    };
    Observation { snapshot, decision }
}

/// Feeds one caller utterance to the policy's numbers without letting it
/// decide (the IVR no longer has the caller: a transfer is under way, or the
/// call is closing).
pub fn track(config: &PolicyConfig, state: &mut PolicyState, utterance: &Utterance<'_>) -> PolicySnapshot {
    let norm = (config.repeat_similarity > 0.0).then(|| Normalized::new(utterance.text));
    track_normalized(config, state, utterance, norm.as_ref())
}

/// Updates the numbers; `norm` is the utterance's words when a rule reads them.
fn track_normalized(
    config: &PolicyConfig,
    state: &mut PolicyState,
    utterance: &Utterance<'_>,
    norm: Option<&Normalized>,
) -> PolicySnapshot {
    let Some(norm) = norm.filter(|_| config.repeat_similarity > 0.0) else {
        state.recent_words.clear();
        return update(config, state, utterance.score.score);
    };
    let words = content_words(norm);
    let repeat = state.recent_words.iter().map(|w| overlap(w, &words)).fold(0.0, f64::max);
    state.recent_words.push(words);
    let keep = config.repeat_window.max(1) as usize;
    if state.recent_words.len() > keep {
        let excess = state.recent_words.len() - keep;
        state.recent_words.drain(..excess);
    }
    PolicySnapshot { repeat, ..update(config, state, utterance.score.score) }
}

/// The decision guard: records `decision` as the call's and returns it, unless
/// the call was already decided (and not [reopened](reopen)). Automatic,
/// keypad, spoken-menu and manual (`ivrx transfer`) decisions all go through
/// here, and whoever asks acts only on what it returns, so a call is
/// transferred exactly once.
pub fn claim(state: &mut PolicyState, decision: Decision) -> Option<Decision> {
    if state.decided && !state.reopened {
        return None;
    }
    state.decided = true;
    state.reopened = false;
    state.decision = Some(decision.clone());
    Some(decision)
}

/// The transfer of the call's decision failed: no agent could be reached and
/// the caller is back with the IVR. The caller (keypad, spoken menu choice)
/// or a supervisor may ask again, and the next [`claim`] replaces the
/// decision; the policy's own rules stay quiet, having decided once.
pub fn reopen(state: &mut PolicyState) {
    state.reopened = state.decided;
}

/// Updates level, window and run of negatives with a new score.
fn update(config: &PolicyConfig, state: &mut PolicyState, score: f64) -> PolicySnapshot {
    let score = if score.is_finite() { score.clamp(-1.0, 1.0) } else { 0.0 };
    let window = config.drop_window.max(1) as usize;
    // The window holds levels the caller actually reached (not the neutral start).
    if state.utterances > 0 {
        state.recent_levels.push(state.level);
    }
    if state.recent_levels.len() > window {
        let excess = state.recent_levels.len() - window;
        state.recent_levels.drain(..excess);
    }
    let alpha = config.smoothing.clamp(f64::MIN_POSITIVE, 1.0);
    state.level = alpha * score + (1.0 - alpha) * state.level;
    state.utterances = state.utterances.saturating_add(1);
    state.lowest_score = state.lowest_score.min(score);
    if score >= config.grievance_relief {
        state.grievance = 0.0;
    }
    state.grievance += (-score).max(0.0);
    if score <= config.negative_score {
        state.consecutive_negatives = state.consecutive_negatives.saturating_add(1);
    } else if score >= config.negatives_reset_at {
        state.consecutive_negatives = 0;
    }
    numbers(config, state, score)
}

fn numbers(config: &PolicyConfig, state: &PolicyState, score: f64) -> PolicySnapshot {
    let peak = state.recent_levels.iter().copied().fold(state.level, f64::max);
    let drop = (peak - state.level).max(0.0);
    // The neutral start counts while it is still in the window.
    let start = if state.recent_levels.len() < config.drop_window.max(1) as usize { 0.0 } else { state.level };
    let trough = state.recent_levels.iter().copied().fold(state.level.min(start), f64::min);
    PolicySnapshot {
        score,
        level: state.level,
        drop,
        consecutive_negatives: state.consecutive_negatives,
        distance_to_floor: state.level - config.floor,
        distance_to_drop: config.rapid_drop - drop,
        peak,
        utterances: state.utterances,
        repeat: 0.0,
        rise: (state.level - trough).max(0.0),
    }
}

fn decision_for(
    reason: Reason,
    queue: &str,
    utterance: &Utterance<'_>,
    hit: Option<&TrackerHit>,
    snapshot: &PolicySnapshot,
) -> Decision {
    Decision {
        reason,
        queue: queue.to_string(),
        trigger_index: utterance.index,
        trigger_text: utterance.text.to_string(),
        trigger_phrase: hit.map(|h| h.said().to_string()),
        tracker: hit.map(|h| h.tracker.clone()),
        numbers: snapshot.clone(),
    }
}

fn tracker_decision(
    config: &PolicyConfig,
    state: &PolicyState,
    utterance: &Utterance<'_>,
    snapshot: &PolicySnapshot,
    cues: &Cues,
) -> Option<Decision> {
    let score = snapshot.score;
    // The lower of the level before and after this utterance: the mood of the call so far.
    let before = state.recent_levels.last().copied().unwrap_or(0.0);
    let low = before.min(state.level);
    let negative = score <= config.agree_negative_score || low <= config.agree_negative_level;
    let not_negative =
        score >= config.sales_min_score && low >= config.sales_min_level && !blocks_sales(config, state, cues);
    for action in [TrackerAction::Transfer, TrackerAction::WhenNegative, TrackerAction::WhenNotNegative] {
        let agrees = match action {
            TrackerAction::Transfer => true,
            TrackerAction::WhenNegative => negative,
            TrackerAction::WhenNotNegative => not_negative,
            TrackerAction::Evidence | TrackerAction::Ignore => false,
        };
        if !agrees {
            continue;
        }
        for hit in &utterance.score.trackers {
            let Some(rule) = config.tracker_rule(&hit.tracker).filter(|r| r.action == action) else {
                continue;
            };
            if config.price_needs_interest && hit.tracker == BUYING_SIGNAL && asks_a_price(hit.said()) {
                continue;
            }
            let Some(reason) = rule.reason.or_else(|| builtin_reason(&hit.tracker)) else {
                continue;
            };
            let default_queue =
                if reason == Reason::BuyingSignal { &config.sales_queue } else { &config.support_queue };
            let queue = rule.queue.as_deref().unwrap_or(default_queue);
            return Some(decision_for(reason, queue, utterance, Some(hit), snapshot));
        }
    }
    None
}

/// Words that open a question about money rather than a wish to buy.
const PRICE_WORDS: &[&str] =
    &["price", "prices", "pricing", "how", "any", "what", "your", "deals", "offers", "special", "better", "best"];

/// True when a buying-signal hit asks what something costs or what is on
/// offer ("how much does it cost to use my phone abroad", "what deals"):
/// information, not yet a wish to buy. Sales takes it with a rise in mood
/// (a rapid incline) or words of wanting.
fn asks_a_price(said: &str) -> bool {
    said.split(' ').next().is_some_and(|w| PRICE_WORDS.contains(&w))
}

/// True when the utterance, or the one before it, names a problem and that
/// keeps it from sales ("my bill is higher than it should be", then "i was
/// told the discount would carry on").
fn blocks_sales(config: &PolicyConfig, state: &PolicyState, cues: &Cues) -> bool {
    let just_before = state.last_complaint > 0 && state.utterances.saturating_sub(state.last_complaint) <= 1;
    config.complaint_blocks_sales && (cues.has(Cue::Complaint) || just_before)
}

/// The queue of a built-in tracker's rule, else the default.
fn tracker_queue<'a>(config: &'a PolicyConfig, tracker: &str, default: &'a str) -> &'a str {
    config.tracker_rule(tracker).and_then(|r| r.queue.as_deref()).unwrap_or(default)
}

fn cue_decision(
    reason: Reason,
    queue: &str,
    utterance: &Utterance<'_>,
    phrase: &str,
    snapshot: &PolicySnapshot,
) -> Decision {
    Decision { trigger_phrase: Some(phrase.to_string()), ..decision_for(reason, queue, utterance, None, snapshot) }
}

/// Requests for a person and leaving, in words no tracker lists.
fn phrasing_decision(
    config: &PolicyConfig,
    utterance: &Utterance<'_>,
    snapshot: &PolicySnapshot,
    cues: &Cues,
) -> Option<Decision> {
    let rules = [
        (config.person_phrasing, Cue::AsksForPerson, Reason::AskedForHuman, ASKS_FOR_HUMAN),
        (config.leaving_phrasing, Cue::Leaving, Reason::ChurnRisk, CHURN_RISK),
    ];
    rules.into_iter().find_map(|(on, cue, reason, tracker)| {
        let hit = cues.get(cue).filter(|_| on)?;
        let queue = tracker_queue(config, tracker, &config.support_queue);
        Some(cue_decision(reason, queue, utterance, &hit.matched, snapshot))
    })
}

/// The sign of frustration in this utterance, if any: a hit of a tracker
/// whose action is `evidence`, a correction, a repeat.
fn sign_in(config: &PolicyConfig, state: &PolicyState, utterance: &Utterance<'_>, cues: &Cues) -> Option<Sign> {
    let at = state.utterances;
    for hit in &utterance.score.trackers {
        let Some(rule) = config.tracker_rule(&hit.tracker).filter(|r| r.action == TrackerAction::Evidence) else {
            continue;
        };
        if let Some(reason) = rule.reason.or_else(|| builtin_reason(&hit.tracker)) {
            return Some(Sign { at, reason, phrase: hit.said().to_string(), tracker: Some(hit.tracker.clone()) });
        }
    }
    if let Some(hit) = cues.get(Cue::Correction).filter(|_| config.corrections) {
        return Some(Sign { at, reason: Reason::Correction, phrase: hit.matched.clone(), tracker: None });
    }
    None
}

/// One mild sign of frustration waits for one more utterance of evidence: a
/// second sign, or a negative utterance, within `frustration_window`.
fn frustration_decision(
    config: &PolicyConfig,
    state: &mut PolicyState,
    utterance: &Utterance<'_>,
    snapshot: &PolicySnapshot,
    cues: &Cues,
) -> Option<Decision> {
    let repeated = config.repeat_similarity > 0.0 && snapshot.repeat >= config.repeat_similarity;
    let sign = sign_in(config, state, utterance, cues).or_else(|| {
        repeated.then(|| Sign {
            at: state.utterances,
            reason: Reason::Repetition,
            phrase: utterance.text.to_string(),
            tracker: None,
        })
    });
    let pending = state.sign.take().filter(|s| state.utterances.saturating_sub(s.at) <= config.frustration_window);
    let (sign, confirmed) = match (sign, pending) {
        (Some(sign), Some(_)) => (sign, true),
        (Some(sign), None) => (sign, snapshot.score <= config.frustration_alone_score),
        (None, Some(pending)) => {
            let negative = snapshot.score <= config.agree_negative_score;
            (pending, negative)
        }
        (None, None) => return None,
    };
    if !confirmed {
        state.sign = Some(sign);
        return None;
    }
    let hit = sign.tracker.as_ref().map(|t| TrackerHit::new(t.clone(), sign.phrase.clone()));
    let queue = match &sign.tracker {
        Some(t) => tracker_queue(config, t, &config.support_queue),
        None => &config.support_queue,
    };
    Some(Decision {
        trigger_phrase: Some(sign.phrase),
        ..decision_for(sign.reason, queue, utterance, hit.as_ref(), snapshot)
    })
}

/// Sentiment rose quickly and the caller wants something; or, with
/// `interest_sales`, the caller wants something in plain words ("i would
/// like to get my son his own phone") and neither the utterance nor the call
/// is a complaint.
fn incline_decision(
    config: &PolicyConfig,
    state: &PolicyState,
    utterance: &Utterance<'_>,
    snapshot: &PolicySnapshot,
    cues: &Cues,
) -> Option<Decision> {
    if blocks_sales(config, state, cues) {
        return None;
    }
    let queue = tracker_queue(config, BUYING_SIGNAL, &config.sales_queue);
    let interest = cues.get(Cue::Interest).map(|h| h.matched.clone());
    let rising =
        config.incline_rise > 0.0 && snapshot.rise >= config.incline_rise && snapshot.score >= config.incline_min_score;
    if rising {
        let buying = config.tracker_rule(BUYING_SIGNAL).is_some_and(|r| r.action != TrackerAction::Ignore);
        let wants = interest.clone().or_else(|| {
            let hit = utterance.score.trackers.iter().find(|h| buying && h.tracker == BUYING_SIGNAL)?;
            Some(hit.said().to_string())
        });
        if let Some(wants) = wants {
            return Some(cue_decision(Reason::RapidIncline, queue, utterance, &wants, snapshot));
        }
    }
    let calm = snapshot.score > config.mounting_prior && snapshot.level >= config.sales_min_level;
    let wants = interest.filter(|_| config.interest_sales && calm)?;
    Some(cue_decision(Reason::BuyingSignal, queue, utterance, &wants, snapshot))
}

/// Words that carry no request of their own: what a repeat is not made of.
const FILLER: &[&str] = &[
    "i", "me", "my", "you", "your", "we", "our", "it", "is", "am", "are", "was", "be", "the", "a", "an", "to", "of",
    "and", "or", "in", "on", "for", "with", "at", "that", "this", "do", "does", "did", "not", "can", "could", "would",
    "will", "please", "just", "yes", "no", "ok", "okay", "so", "um", "uh", "oh", "well", "what", "how", "have", "has",
    "had", "there", "want", "need", "like", "said", "say", "again", "still", "thanks", "thank", "great", "lovely",
    "perfect", "right", "fine", "good", "hello", "hi", "bye", "sorry", "yeah", "yep", "all", "zero", "one", "two",
    "three", "four", "five", "six", "seven", "eight", "nine", "ten", "oh", "double",
];

/// The words of an utterance that say what it is about (no filler, no
/// numbers: reading out a number twice is a confirmation, not a repeat),
/// each by its stem, so "the date i pay" repeats "my payment date".
fn content_words(norm: &Normalized) -> Vec<String> {
    let mut words: Vec<String> = norm
        .words()
        .filter(|w| !FILLER.contains(w) && !w.bytes().all(|b| b.is_ascii_digit()))
        .map(|w| stem(w).to_string())
        .collect();
    words.sort_unstable();
    words.dedup();
    words
}

/// Suffixes a word is compared without.
const SUFFIXES: &[&str] = &["ments", "ment", "ings", "ing", "ed", "es", "s", "e"];

/// A word without its inflection ("payment", "paying" → "pay"; "changed",
/// "change" → "chang"), keeping at least three letters.
fn stem(word: &str) -> &str {
    SUFFIXES.iter().find_map(|s| word.strip_suffix(s).filter(|rest| rest.len() >= 3)).unwrap_or(word)
}

/// Jaccard overlap of two sorted, deduplicated word lists: saying
/// essentially the same thing again, not adding to it ("the twentieth",
/// then "the twentieth of each month").
fn overlap(a: &[String], b: &[String]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let shared = a.iter().filter(|w| b.binary_search(w).is_ok()).count();
    shared as f64 / (a.len() + b.len() - shared) as f64
}

fn sentiment_decision(
    config: &PolicyConfig,
    state: &PolicyState,
    utterance: &Utterance<'_>,
    snapshot: &PolicySnapshot,
) -> Option<Decision> {
    if state.utterances < config.min_utterances {
        return None;
    }
    let reason = if snapshot.drop >= config.rapid_drop && snapshot.level <= config.rapid_drop_level {
        Reason::RapidDecline
    } else if snapshot.level <= config.floor {
        Reason::SentimentFloor
    } else if config.consecutive_negatives > 0 && snapshot.consecutive_negatives >= config.consecutive_negatives {
        Reason::ConsecutiveNegatives
    } else {
        return None;
    };
    Some(decision_for(reason, &config.support_queue, utterance, None, snapshot))
}

/// Anger building in plain words: an utterance at or below
/// `mounting_score`, worse than every earlier one (`lowest_before`), after an
/// earlier utterance at or below `mounting_prior` or naming a problem, or a
/// fall of the level by `rapid_drop` from its peak (praise, then a complaint);
/// or, from `min_utterances` on, an utterance at or below `mounting_prior`
/// that takes the call's grievance to `grievance` (complaints that pile up
/// without one being strong, "it never came", "i have rung twice already").
/// A correction is left to the frustration rule, which waits for more.
fn mounting_decision(
    config: &PolicyConfig,
    state: &PolicyState,
    lowest_before: f64,
    utterance: &Utterance<'_>,
    snapshot: &PolicySnapshot,
    cues: &Cues,
) -> Option<Decision> {
    if cues.has(Cue::Correction) {
        return None;
    }
    let score = snapshot.score;
    let on = config.mounting_score < 0.0;
    let worse = score <= config.mounting_score && score < lowest_before;
    let named = state.last_complaint > 0 && state.last_complaint < state.utterances;
    let after = lowest_before <= config.mounting_prior || named || snapshot.drop >= config.rapid_drop;
    let piled_up = config.grievance > 0.0
        && state.grievance >= config.grievance
        && score <= config.mounting_prior
        && state.utterances >= config.min_utterances;
    ((on && worse && after && snapshot.utterances > 1) || piled_up)
        .then(|| decision_for(Reason::MountingAnger, &config.support_queue, utterance, None, snapshot))
}

#[cfg(test)]
mod tests;
