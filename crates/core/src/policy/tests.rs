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
    // The floor, by itself…
    let c = PolicyConfig { grievance: 0.0, ..PolicyConfig::default() };
    let scores: Vec<Score> = [0.1, -0.1, -0.2, -0.4, -0.4, -0.45].into_iter().map(score).collect();
    let d = run(&c, &scores).0.unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::SentimentFloor, 6));
    // …and a line earlier the grievance (1.1) of complaints piling up.
    let d = run(&PolicyConfig::default(), &scores).0.unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::MountingAnger, 5));
}

#[test]
fn consecutive_negatives() {
    let c = PolicyConfig { floor: -1.0, grievance: 0.0, ..PolicyConfig::default() };
    let (d, _) = run(&c, &[score(-0.4), score(-0.4), score(-0.4)]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.trigger_index, d.numbers.consecutive_negatives), (Reason::ConsecutiveNegatives, 3, 3));
    let off = PolicyConfig { consecutive_negatives: 0, ..c };
    assert!(run(&off, &[score(-0.4), score(-0.4), score(-0.4)]).0.is_none());
}

#[test]
fn mildly_negative_asides_do_not_break_a_run() {
    let c = PolicyConfig { floor: -1.0, grievance: 0.0, ..PolicyConfig::default() };
    let d = run(&c, &[score(-0.4), score(-0.4), score(-0.1), score(-0.4)]).0.unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::ConsecutiveNegatives, 4));
    assert!(run(&c, &[score(-0.4), score(-0.4), score(0.1), score(-0.4)]).0.is_none());
}

#[test]
fn a_caller_who_recovers_is_not_escalated() {
    assert!(decide(&[-0.5, -0.4, 0.4, 0.6, 0.7]).is_none());
    assert!(decide(&[-0.4, -0.4, 0.4, -0.4, -0.1, 0.3]).is_none());
    // Four complaints with only a neutral line between them are no recovery:
    // their grievance (1.2) transfers at the fourth; the rules before it waited.
    let scores: Vec<Score> = [-0.4, -0.4, 0.0, -0.4, -0.4, 0.3].into_iter().map(score).collect();
    let d = run(&PolicyConfig::default(), &scores).0.unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::MountingAnger, 4));
    assert!(run(&PolicyConfig { grievance: 0.0, ..PolicyConfig::default() }, &scores).0.is_none());
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
fn one_mild_sign_of_frustration_waits_for_one_more_utterance() {
    let c = PolicyConfig::default();
    let (d, state) = run(&c, &[with_hit(-0.4, "bot_frustration", "not listening")]);
    assert!(d.is_none(), "one mild sign is not enough");
    assert_eq!(state.sign.as_ref().map(|s| s.reason), Some(Reason::BotFrustration));
    // A second sign confirms it.
    let (d, _) =
        run(&c, &[with_hit(-0.4, "bot_frustration", "not listening"), with_hit(0.0, "bot_frustration", "robot")]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.trigger_index, d.tracker.as_deref()), (Reason::BotFrustration, 2, Some("bot_frustration")));
    assert_eq!(d.trigger_phrase.as_deref(), Some("robot"));
    // So does a negative utterance next, with the sign as the trigger phrase.
    let (d, _) = run(&c, &[with_hit(-0.2, "bot_frustration", "not listening"), score(-0.3)]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::BotFrustration, 2));
    assert_eq!(d.trigger_phrase.as_deref(), Some("not listening"));
    // A calm utterance next does not, and the sign expires after the window.
    let (d, _) = run(&c, &[with_hit(-0.4, "bot_frustration", "a computer"), score(0.1), score(0.0), score(-0.3)]);
    assert!(d.is_none());
    // A strongly negative sign acts alone.
    let (d, _) = run(&c, &[with_hit(-0.8, "bot_frustration", "useless system")]);
    assert_eq!(d.unwrap().reason, Reason::BotFrustration);
}

/// Runs utterances (text and score, no tracker hits) through the policy.
fn said(config: &PolicyConfig, lines: &[(&str, f64)]) -> (Option<Decision>, PolicyState) {
    let scores: Vec<Score> = lines.iter().map(|&(_, s)| score(s)).collect();
    let mut state = PolicyState::default();
    let mut first = None;
    for (i, (&(text, _), s)) in lines.iter().zip(&scores).enumerate() {
        let u = Utterance { index: i as u32 + 1, text, score: s, offset_ms: 0 };
        let o = observe(config, &mut state, &u);
        first = first.or(o.decision);
    }
    (first, state)
}

#[test]
fn a_single_mild_correction_on_the_first_turn_waits() {
    let c = PolicyConfig::default();
    let (d, _) = said(&c, &[("no thats not what i asked", -0.4), ("i need my pin number reset", 0.0), ("thanks", 0.4)]);
    assert!(d.is_none());
    let (d, _) = said(&c, &[("no thats not what i asked", -0.4), ("its still wrong", -0.2)]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.trigger_index, d.queue.as_str()), (Reason::Correction, 2, "support"));
    assert_eq!(d.trigger_phrase.as_deref(), Some("that is not what i"), "the sign that waited");
    assert!(d.tracker.is_none());
    let off = PolicyConfig { corrections: false, ..c };
    assert!(said(&off, &[("no thats not what i asked", -0.4), ("thats wrong", -0.2)]).0.is_none());
}

#[test]
fn repeating_the_same_request_is_a_sign() {
    let c = PolicyConfig::default();
    let lines =
        [("i want to change my payment date", 0.0), ("change payment date", 0.0), ("change my payment date", 0.0)];
    let (d, state) = said(&c, &lines);
    let d = d.unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::Repetition, 3));
    assert!(d.numbers.repeat >= 0.6, "{}", d.numbers.repeat);
    assert!(state.recent_words.len() <= c.repeat_window as usize);
    // Reading a number out again confirms it; it does not repeat a request.
    let (d, _) = said(
        &c,
        &[("my account number is seven seven three", 0.0), ("yes seven seven three", 0.0), ("seven seven three", 0.0)],
    );
    assert!(d.is_none());
    let off = PolicyConfig { repeat_similarity: 0.0, ..c };
    assert!(said(&off, &lines).0.is_none());
}

#[test]
fn requests_for_a_person_and_leaving_in_other_words() {
    let c = PolicyConfig::default();
    let (d, _) =
        said(&c, &[("my bill doubled", -0.3), ("could i have a word with someone in your accounts team", 0.0)]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.trigger_index, d.queue.as_str()), (Reason::AskedForHuman, 2, "support"));
    assert_eq!(d.trigger_phrase.as_deref(), Some("could i have a word with someone"));
    assert!(d.tracker.is_none(), "no tracker fired: the phrasing did");
    let (d, _) = said(&c, &[("i am finished with your company", -0.2)]);
    assert_eq!(d.unwrap().reason, Reason::ChurnRisk);
    let off = PolicyConfig { person_phrasing: false, leaving_phrasing: false, ..c.clone() };
    assert!(said(&off, &[("could i have a word with someone in your accounts team", 0.0)]).0.is_none());
    assert!(said(&off, &[("i am finished with your company", -0.2)]).0.is_none());
    // The tracker rule's queue applies.
    let mut care = c;
    care.trackers.get_mut("asks_for_human").unwrap().queue = Some("care".into());
    assert_eq!(said(&care, &[("find me somebody who handles refunds", 0.0)]).0.unwrap().queue, "care");
}

#[test]
fn a_rapid_incline_with_interest_routes_to_sales() {
    let c = PolicyConfig::default();
    let (d, _) = said(&c, &[("i got your letter", 0.0), ("that sounds great", 0.5), ("how do i get it", 0.3)]);
    let d = d.unwrap();
    assert_eq!((d.reason, d.queue.as_str(), d.trigger_index), (Reason::RapidIncline, "sales", 3));
    assert!(d.numbers.rise >= 0.2, "{}", d.numbers.rise);
    assert_eq!(d.trigger_phrase.as_deref(), Some("how do i get"));
    // Relief is an incline too, but wants nothing.
    assert!(said(&c, &[("my router is down", -0.4), ("oh that fixed it", 0.4), ("brilliant thanks", 0.7)]).0.is_none());
    // Interest without a rise is not a surge (plain interest is its own rule,
    // below); the incline can be turned off.
    let plain = PolicyConfig { interest_sales: false, ..c.clone() };
    let warm = [("great", 0.6), ("lovely", 0.6), ("perfect", 0.6), ("how do i get it", 0.3)];
    assert!(said(&plain, &warm).0.is_none());
    assert_eq!(said(&c, &warm).0.map(|d| d.reason), Some(Reason::BuyingSignal));
    let off = PolicyConfig { incline_rise: 0.0, ..plain };
    assert!(said(&off, &[("i got your letter", 0.0), ("that sounds great", 0.5), ("how do i get it", 0.3)])
        .0
        .is_none());
}

#[test]
fn praise_with_a_complaint_is_not_a_sales_lead() {
    let c = PolicyConfig::default();
    let complaint = "i love the phone but i want a better deal because the bill went up";
    let s = with_hit(0.3, "buying_signal", "better deal");
    let mut state = PolicyState::default();
    let o = observe(&c, &mut state, &Utterance { index: 1, text: complaint, score: &s, offset_ms: 0 });
    assert!(o.decision.is_none());
    let open = PolicyConfig { complaint_blocks_sales: false, ..c };
    let mut state = PolicyState::default();
    let o = observe(&open, &mut state, &Utterance { index: 1, text: complaint, score: &s, offset_ms: 0 });
    assert_eq!(o.decision.unwrap().reason, Reason::BuyingSignal);
}

#[test]
fn a_problem_named_just_before_keeps_a_price_word_from_sales() {
    let c = PolicyConfig::default();
    let mut state = PolicyState::default();
    let plain = score(0.0);
    let bill = "my bill is higher than it should be";
    assert!(observe(&c, &mut state, &Utterance { index: 1, text: bill, score: &plain, offset_ms: 0 })
        .decision
        .is_none());
    let s = with_hit(0.0, "buying_signal", "discount");
    let told = "i was told the discount would carry on";
    let o = observe(&c, &mut state, &Utterance { index: 2, text: told, score: &s, offset_ms: 0 });
    assert!(o.decision.is_none(), "a complaint is not a sales lead");
    let mut state = PolicyState::default();
    let o = observe(&c, &mut state, &Utterance { index: 1, text: told, score: &s, offset_ms: 0 });
    assert_eq!(o.decision.unwrap().reason, Reason::BuyingSignal);
}

#[test]
fn anger_mounting_in_plain_words() {
    // A complaint worse than every earlier one, after an earlier complaint.
    let d = decide(&[-0.3, 0.0, 0.1, -0.55]).unwrap();
    assert_eq!((d.reason, d.trigger_index, d.queue.as_str()), (Reason::MountingAnger, 4, "support"));
    // …or after praise: the level fell from its peak.
    let d = decide(&[0.9, -0.6]).unwrap();
    assert_eq!((d.reason, d.trigger_index), (Reason::MountingAnger, 2));
    // Not alone, not milder than before, not on a plain problem.
    assert!(decide(&[-0.6]).is_none());
    assert!(decide(&[0.0, -0.6]).is_none());
    assert!(decide(&[-0.2, -0.45]).is_none());
    assert!(decide(&[-0.6, 0.3, -0.55, 0.4]).is_none());
    // After a problem named in words, though it scored neutral.
    let c = PolicyConfig::default();
    let (d, _) = said(&c, &[("my bill is higher than it should be", 0.0), ("i am not pleased at all", -0.55)]);
    assert_eq!(d.unwrap().reason, Reason::MountingAnger);
    // A first correction waits for more, however it scored.
    let (d, _) = said(&c, &[("i need to report a fault", -0.1), ("no a fault on my line", -0.53)]);
    assert!(d.is_none());
    let off = PolicyConfig { mounting_score: 0.0, ..c.clone() };
    assert!(decide(&[-0.3, 0.1, -0.55]).is_some());
    assert!(run(&off, &[score(-0.3), score(0.1), score(-0.55)]).0.is_none());
    assert!(PolicyConfig::default().without_signals().mounting_score == 0.0);
}

#[test]
fn complaints_that_pile_up_without_one_being_strong() {
    // Sums to 1.0 at the fourth, which is itself a complaint.
    let d = decide(&[-0.3, -0.3, -0.1, -0.3]).unwrap();
    assert_eq!((d.reason, d.trigger_index, d.queue.as_str()), (Reason::MountingAnger, 4, "support"));
    // Not when the one that takes it there is mild, nor after relief.
    assert!(decide(&[-0.3, -0.3, -0.3, -0.1]).is_none());
    assert!(decide(&[-0.3, -0.3, 0.4, -0.2, -0.3]).is_none());
    // The neutral and the positive add nothing.
    assert!(decide(&[-0.3, 0.0, 0.2, -0.3, 0.0, -0.3]).is_none());
    let off = PolicyConfig { grievance: 0.0, ..PolicyConfig::default() };
    assert!(run(&off, &[score(-0.3), score(-0.3), score(-0.1), score(-0.3)]).0.is_none());
    assert_eq!(PolicyConfig::default().without_signals().grievance, 0.0);
}

#[test]
fn a_repeat_in_other_forms_of_the_same_words() {
    let c = PolicyConfig::default();
    let lines = [
        ("i want to change my payment date", 0.0),
        ("i want to change the date i pay", 0.0),
        ("i just want to change my payment date why is this so hard", -0.1),
    ];
    let (d, _) = said(&c, &lines);
    assert_eq!(d.map(|d| (d.reason, d.trigger_index)), Some((Reason::Repetition, 3)));
    assert_eq!((stem("payment"), stem("paying"), stem("pay")), ("pay", "pay", "pay"));
    assert_eq!((stem("changed"), stem("change"), stem("bus")), ("chang", "chang", "bus"));
}

#[test]
fn wanting_something_in_plain_words_is_a_sales_lead() {
    let c = PolicyConfig::default();
    let (d, _) = said(&c, &[("hello i would like to get my son his own phone on my account", -0.06)]);
    let d = d.unwrap();
    assert_eq!(
        (d.reason, d.queue.as_str(), d.trigger_phrase.as_deref()),
        (Reason::BuyingSignal, "sales", Some("i would like to get"))
    );
    // Not from a complaint, nor in an unhappy call.
    assert!(said(&c, &[("my bill is wrong", -0.3), ("i would like to get it fixed", 0.0)]).0.is_none());
    assert!(said(&c, &[("i want something faster", -0.3)]).0.is_none());
    let off = PolicyConfig { interest_sales: false, ..c };
    assert!(said(&off, &[("we want something faster", 0.2)]).0.is_none());
}

#[test]
fn asking_a_price_is_not_yet_a_sales_lead() {
    let c = PolicyConfig::default();
    let roaming = [with_hit(0.0, BUYING_SIGNAL, "how much does")];
    assert!(run(&c, &roaming).0.is_none());
    assert!(run(&PolicyConfig { price_needs_interest: false, ..c.clone() }, &roaming).0.is_some());
    // A buying word other than a price still routes at once.
    let d = run(&c, &[with_hit(0.0, BUYING_SIGNAL, "upgrading")]).0.unwrap();
    assert_eq!((d.reason, d.queue.as_str()), (Reason::BuyingSignal, "sales"));
    assert!(asks_a_price("price") && asks_a_price("what deals") && !asks_a_price("cheapest"));
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

#[test]
fn without_signals_is_the_policy_before_them() {
    let c = PolicyConfig::default().without_signals();
    c.validate().unwrap();
    assert!(!c.reads_words());
    assert!(PolicyConfig::default().reads_words());
    assert_eq!(c.trackers["bot_frustration"].action, TrackerAction::WhenNegative);
    let (d, _) = run(&c, &[with_hit(-0.4, "bot_frustration", "not listening")]);
    assert_eq!(d.unwrap().reason, Reason::BotFrustration, "at once, as before");
    assert!(said(&c, &[("i am finished with your company", -0.2)]).0.is_none());
}
