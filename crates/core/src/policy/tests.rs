use ivrx_intel::{Label, LocalEngine, Score, Scorer, TrackerHit};

use super::*;

fn score(s: f64) -> Score {
    Score { score: s, label: Label::from_score(s), trackers: Vec::new(), engine: "test".into() }
}

fn with_hit(s: f64, tracker: &str, phrase: &str) -> Score {
    Score { trackers: vec![TrackerHit::new(tracker, phrase)], ..score(s) }
}

/// Runs scores through the policy; returns the first decision and the state.
fn run(config: &PolicyConfig, scores: &[Score]) -> (Option<Decision>, PolicyState) {
    let mut state = PolicyState::default();
    let mut first = None;
    for (i, s) in scores.iter().enumerate() {
        let u = Utterance { index: i as u32 + 1, text: "…", score: s, offset_ms: i as u64 * 1000 };
        let o = observe(config, &mut state, &u);
        if first.is_none() {
            first = o.decision;
        } else {
            assert!(o.decision.is_none(), "decided twice");
        }
    }
    (first, state)
}

fn decide(scores: &[f64]) -> Option<Decision> {
    run(&PolicyConfig::default(), &scores.iter().map(|&s| score(s)).collect::<Vec<_>>()).0
}

#[test]
fn a_single_plain_problem_is_not_frustration() {
    assert!(decide(&[-0.6]).is_none());
    assert!(decide(&[-0.3, 0.0, 0.2]).is_none());
}

#[test]
fn the_floor_catches_sustained_negativity() {
    let d = decide(&[-0.7, -0.7]).unwrap();
    assert_eq!(d.reason, Reason::SentimentFloor);
    assert_eq!(d.trigger_index, 2);
    assert_eq!(d.queue, "support");
    assert!(d.numbers.level <= -0.5 && d.numbers.distance_to_floor <= 0.0);
}

#[test]
fn a_rapid_decline_from_a_good_start() {
    let d = decide(&[0.6, 0.5, -0.5, -0.6]).unwrap();
    assert_eq!(d.reason, Reason::RapidDecline);
    assert_eq!(d.trigger_index, 4);
    assert!(d.numbers.drop >= 0.5 && d.numbers.distance_to_drop <= 0.0);
    assert!(d.numbers.peak > 0.3);
}

#[test]
fn a_gradual_decline_is_caught() {
    assert!(decide(&[0.1, -0.1, -0.2, -0.4]).is_none());
    let d = decide(&[0.1, -0.1, -0.2, -0.4, -0.4, -0.45]).unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::SentimentFloor, 6));
}

#[test]
fn consecutive_negatives() {
    let c = PolicyConfig { floor: -1.0, ..PolicyConfig::default() };
    let (d, _) = run(&c, &[score(-0.4), score(-0.4), score(-0.4)]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.trigger_index, d.numbers.consecutive_negatives), (Reason::ConsecutiveNegatives, 3, 3));
    let off = PolicyConfig { consecutive_negatives: 0, ..c };
    assert!(run(&off, &[score(-0.4), score(-0.4), score(-0.4)]).0.is_none());
}

#[test]
fn mildly_negative_asides_do_not_break_a_run() {
    let c = PolicyConfig { floor: -1.0, ..PolicyConfig::default() };
    let d = run(&c, &[score(-0.4), score(-0.4), score(-0.1), score(-0.4)]).0.unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::ConsecutiveNegatives, 4));
    assert!(run(&c, &[score(-0.4), score(-0.4), score(0.1), score(-0.4)]).0.is_none());
}

#[test]
fn a_caller_who_recovers_is_not_escalated() {
    assert!(decide(&[-0.5, -0.4, 0.4, 0.6, 0.7]).is_none());
    assert!(decide(&[-0.4, -0.4, 0.0, -0.4, -0.4, 0.3]).is_none());
}

#[test]
fn sentiment_rules_wait_for_min_utterances() {
    let c = PolicyConfig { min_utterances: 1, ..PolicyConfig::default() };
    let (d, _) = run(&c, &[score(-1.0)]);
    assert_eq!(d.unwrap().reason, Reason::SentimentFloor);
    assert!(decide(&[-1.0]).is_none());
}

#[test]
fn asking_for_a_human_transfers_at_once() {
    let (d, _) = run(&PolicyConfig::default(), &[with_hit(0.4, "asks_for_human", "agent")]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.queue.as_str(), d.trigger_index), (Reason::AskedForHuman, "support", 1));
    assert_eq!(d.tracker.as_deref(), Some("asks_for_human"));
    assert_eq!(d.trigger_phrase.as_deref(), Some("agent"));
}

#[test]
fn abuse_and_churn_escalate_to_support() {
    for (t, r) in [("abuse", Reason::Abuse), ("churn_risk", Reason::ChurnRisk)] {
        let (d, _) = run(&PolicyConfig::default(), &[with_hit(0.0, t, "x")]);
        let d = d.unwrap();
        assert_eq!((d.reason, d.queue.as_str()), (r, "support"));
    }
}

#[test]
fn bot_frustration_needs_sentiment_to_agree() {
    let (d, _) = run(&PolicyConfig::default(), &[with_hit(0.0, "bot_frustration", "a computer")]);
    assert!(d.is_none());
    let (d, _) = run(&PolicyConfig::default(), &[with_hit(-0.4, "bot_frustration", "not listening")]);
    assert_eq!(d.unwrap().reason, Reason::BotFrustration);
    // A negative level agrees too.
    let (d, _) = run(&PolicyConfig::default(), &[score(-0.6), with_hit(0.0, "bot_frustration", "robot")]);
    assert_eq!(d.unwrap().reason, Reason::BotFrustration);
}

#[test]
fn a_positive_buying_signal_routes_to_sales() {
    let (d, _) = run(&PolicyConfig::default(), &[with_hit(0.1, "buying_signal", "upgrade")]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.queue.as_str()), (Reason::BuyingSignal, "sales"));
    let (d, _) = run(&PolicyConfig::default(), &[with_hit(-0.4, "buying_signal", "discount")]);
    assert!(d.is_none());
    let (d, _) = run(&PolicyConfig::default(), &[score(-0.7), with_hit(0.0, "buying_signal", "price")]);
    assert!(d.is_none(), "a caller mid-complaint is not a sales lead");
}

#[test]
fn immediate_rules_win_over_conditional_ones() {
    let s = Score {
        trackers: vec![TrackerHit::new("buying_signal", "upgrade"), TrackerHit::new("asks_for_human", "agent")],
        ..score(0.2)
    };
    let (d, _) = run(&PolicyConfig::default(), &[s]);
    assert_eq!(d.unwrap().reason, Reason::AskedForHuman);
}

#[test]
fn tracker_rules_are_configurable() {
    let mut c = PolicyConfig::default();
    c.trackers.insert("buying_signal".into(), TrackerRule::new(TrackerAction::Ignore));
    c.trackers.insert(
        "legal".into(),
        TrackerRule {
            action: TrackerAction::Transfer,
            queue: Some("retention".into()),
            reason: Some(Reason::ChurnRisk),
        },
    );
    let (d, _) = run(&c, &[with_hit(0.5, "buying_signal", "upgrade")]);
    assert!(d.is_none());
    let (d, _) = run(&c, &[with_hit(0.0, "legal", "lawyer")]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.queue.as_str()), (Reason::ChurnRisk, "retention"));
    // Trackers without a rule are recorded but do nothing.
    let (d, _) = run(&c, &[with_hit(-0.9, "weather", "rain")]);
    assert!(d.is_none());
}

#[test]
fn decides_once_per_call() {
    let scores = [with_hit(0.0, "asks_for_human", "agent"), with_hit(0.0, "abuse", "x"), score(-1.0), score(-1.0)];
    let (d, state) = run(&PolicyConfig::default(), &scores);
    assert_eq!(d.unwrap().trigger_index, 1);
    assert!(state.decided);
    assert_eq!(state.decision.as_ref().unwrap().reason, Reason::AskedForHuman);
    assert_eq!(state.utterances, 4, "numbers keep updating after the decision");
}

#[test]
fn manual_and_automatic_transfers_are_exactly_once() {
    let c = PolicyConfig::default();
    let mut state = PolicyState::default();
    let manual = Decision {
        reason: Reason::Manual,
        queue: "support".into(),
        trigger_index: 0,
        trigger_text: String::new(),
        trigger_phrase: None,
        tracker: None,
        numbers: PolicySnapshot::default(),
    };
    assert!(claim(&mut state, manual.clone()).is_some());
    assert!(claim(&mut state, manual).is_none());
    let s = with_hit(0.0, "asks_for_human", "agent");
    let o = observe(&c, &mut state, &Utterance { index: 1, text: "agent", score: &s, offset_ms: 0 });
    assert!(o.decision.is_none());
}

#[test]
fn state_survives_a_restart() {
    let c = PolicyConfig::default();
    let scores = [0.6, 0.5, -0.5, -0.6].map(score);
    let mut state = PolicyState::default();
    let mut resumed_decision = None;
    for (i, s) in scores.iter().enumerate() {
        let json = serde_json::to_string(&state).unwrap();
        state = serde_json::from_str(&json).unwrap();
        let u = Utterance { index: i as u32 + 1, text: "…", score: s, offset_ms: 0 };
        resumed_decision = resumed_decision.or(observe(&c, &mut state, &u).decision);
    }
    assert_eq!(resumed_decision.unwrap().reason, Reason::RapidDecline);
    // An older, smaller state still loads.
    let old: PolicyState = serde_json::from_str(r#"{"utterances":2,"decided":false}"#).unwrap();
    assert_eq!(old.utterances, 2);
}

#[test]
fn hostile_numbers_never_panic() {
    let c = PolicyConfig::default();
    let (_, state) = run(&c, &[score(f64::NAN), score(f64::INFINITY), score(-7.0), score(3.0)]);
    assert!(state.level.is_finite());
    let weird = PolicyConfig { drop_window: 0, smoothing: 0.0, ..PolicyConfig::default() };
    let _ = run(&weird, &[score(-1.0), score(-1.0)]);
}

#[test]
fn with_the_local_engine() {
    let engine = LocalEngine::default();
    let c = PolicyConfig::default();
    let texts = ["my internet is slow", "i lost my card"];
    let mut state = PolicyState::default();
    for (i, t) in texts.iter().enumerate() {
        let s = engine.score(t);
        let o = observe(&c, &mut state, &Utterance { index: i as u32 + 1, text: t, score: &s, offset_ms: 0 });
        assert!(o.decision.is_none(), "{t}");
    }
    let s = engine.score("I want to speak to a real person");
    let o = observe(
        &c,
        &mut state,
        &Utterance { index: 3, text: "I want to speak to a real person", score: &s, offset_ms: 0 },
    );
    assert_eq!(o.decision.unwrap().reason, Reason::AskedForHuman);
}
