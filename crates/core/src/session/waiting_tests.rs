//! Every agent busy: the caller waits in the call queue, hears their place
//! in line and hold audio, and is bridged with the first agent free; or,
//! after the longest wait, is back with the IVR.

use super::*;
use crate::settings::WaitQueueConfig;

const A1: &str = "v3:agent-1";
const A2: &str = "v3:agent-2";
/// The first agent's leg of the third attempt (every dial is a new leg).
const A1_AGAIN: &str = "v3:agent-1-again";

fn queued_call() -> Call {
    let queue = WaitQueueConfig { name: "support-wait".into(), max_wait_secs: 120, ..Default::default() };
    let s = SessionSettings { wait_queue: Some(queue), ..Default::default() };
    let mut c = Call::with(Arc::new(s));
    c.start();
    c
}

/// Presses 0; both support agents are busy. The caller's enqueue.
fn every_agent_busy(c: &mut Call) -> Vec<Effect> {
    c.press("0");
    c.speak_ended(CALLER); // the bridging line: hold music while the agents are tried
    c.on_agent(A1, 1, "call.initiated", json!({}));
    c.on_agent(A1, 1, "call.hangup", json!({"hangup_cause": "user_busy"}));
    c.on_agent(A2, 2, "call.initiated", json!({}));
    c.on_agent(A2, 2, "call.hangup", json!({"hangup_cause": "user_busy"}))
}

/// The queue's record (attempt 0) among the effects: `(status, detail)`.
fn queue_record(fx: &[Effect]) -> Vec<(TransferStatus, Option<String>)> {
    events(fx)
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::Transfer { attempt: 0, status, detail, .. } => Some((status, detail)),
            _ => None,
        })
        .collect()
}

#[test]
fn with_every_agent_busy_the_caller_waits_in_line_and_the_first_agent_free_is_bridged_with_the_queue() {
    let mut c = queued_call();
    let fx = every_agent_busy(&mut c);
    let enqueue = actions(&fx)
        .into_iter()
        .find_map(|a| match a {
            Action::Enqueue(e) => Some(e),
            _ => None,
        })
        .expect("the caller is put in the queue");
    assert_eq!(
        (enqueue.queue_name.as_deref(), enqueue.max_wait_time_secs, enqueue.max_size),
        (Some("support-wait"), Some(120), Some(100))
    );
    assert!(!transfer_statuses(&fx).contains(&TransferStatus::Failed), "not back to the IVR");
    assert_eq!(names(&fx).iter().filter(|n| **n == "playback_stop").count(), 1, "hold music stops first");
    assert_eq!(c.s.phase(), Phase::Transferring);

    let enqueued = json!({"queue": "support-wait", "current_position": 2, "queue_avg_wait_time_secs": 30});
    let fx = c.on_caller("call.enqueued", enqueued.clone());
    assert_eq!(queue_record(&fx), [(TransferStatus::Queued, Some("number 2 in line in support-wait".into()))]);
    let Some(Action::Speak(line)) = actions(&fx).into_iter().next() else { panic!("{fx:?}") };
    assert!(line.payload.unwrap().contains("You are number 2 in line."));
    assert!(c.on_caller("call.enqueued", enqueued).is_empty(), "a repeat changes nothing");

    let fx = c.speak_ended(CALLER);
    let Some(Action::PlaybackStart(hold)) = actions(&fx).into_iter().next() else { panic!("{fx:?}") };
    assert_eq!(hold.loop_, Some(json!(2)), "announce_every_plays");
    // A cancelled playback is no tick; a completed one starts the next round.
    assert!(dials(&c.on_caller("call.playback.ended", json!({"status": "cancelled"}))).is_empty());
    c.speak_ended(CALLER);
    let fx = c.on_caller("call.playback.ended", json!({"status": "completed"}));
    assert!(names(&fx).contains(&"speak"), "the caller hears they keep their place");
    // Number 2: an agent bridged with the queue would get number 1, so no agent is dialled yet.
    assert!(dials(&fx).is_empty(), "{fx:?}");
    // The caller ahead left: this one is first, and the next round starts at once (once).
    let t = c.t;
    let fx = c.input(Input::QueueHead { at: t });
    let d = dials(&fx);
    assert_eq!(d.len(), 1, "{fx:?}");
    assert_eq!(d[0].to, "+18005550201");
    assert!(c.input(Input::QueueHead { at: t }).is_empty(), "told once is enough");

    // Attempt 3, the first agent again, is free now.
    c.on_agent(A1_AGAIN, 3, "call.initiated", json!({}));
    let fx = c.on_agent(A1_AGAIN, 3, "call.answered", json!({}));
    assert_eq!(names(&fx), ["speak"], "warm: briefed first");
    let fx = c.on_agent(A1_AGAIN, 3, "call.speak.ended", json!({"status": "completed"}));
    let bridge = fx
        .iter()
        .find_map(|e| match e {
            Effect::Send(Command { role: Role::Agent, request: Request::Action(Action::Bridge(b)), .. }) => Some(b),
            _ => None,
        })
        .expect("the agent's leg is bridged");
    assert_eq!((bridge.queue.as_deref(), bridge.call_control_id.as_deref()), (Some("support-wait"), None));

    // The agent's call.bridged may come before the caller's call.dequeued.
    let fx = c.on_agent(A1_AGAIN, 3, "call.bridged", json!({}));
    assert_eq!(transfer_statuses(&fx), [TransferStatus::Connected]);
    let dequeued = json!({"queue": "support-wait", "queue_position": 1, "reason": "bridged", "wait_time_secs": 42});
    let fx = c.on_caller("call.dequeued", dequeued.clone());
    assert_eq!(queue_record(&fx), [(TransferStatus::Dequeued, Some("bridged after 42 s".into()))]);
    assert!(c.on_caller("call.dequeued", dequeued).is_empty());
    assert!(c.on_caller("call.bridged", json!({})).iter().all(|e| !matches!(e, Effect::Send(_))));
    assert_eq!(c.s.phase(), Phase::WithAgent);
    let connected = transfer_statuses(&c.log).iter().filter(|s| **s == TransferStatus::Connected).count();
    assert_eq!(connected, 1);
    check_one_agent_at_a_time(&c.log).unwrap();
}

#[test]
fn after_the_longest_wait_the_transfer_fails_once_and_the_ivr_has_the_caller_again() {
    let mut c = queued_call();
    every_agent_busy(&mut c);
    c.on_caller("call.enqueued", json!({"queue": "support-wait", "current_position": 1}));
    let fx = c.on_caller(
        "call.dequeued",
        json!({"queue": "support-wait", "queue_position": 1, "reason": "timeout", "wait_time_secs": 120}),
    );
    assert_eq!(
        transfer_statuses(&fx),
        [TransferStatus::Dequeued, TransferStatus::Failed],
        "the queue's record, then the transfer's outcome"
    );
    assert_eq!(c.s.phase(), Phase::Ivr);
    let Some(Action::GatherUsingSpeak(menu)) = actions(&fx).into_iter().find(|a| a.name() == "gather_using_speak")
    else {
        panic!("{fx:?}")
    };
    assert!(menu.payload.unwrap().starts_with("I'm sorry, nobody could take your call in time."));
    assert!(c.s.policy_state().reopened, "the caller may ask again");
}

#[test]
fn a_queue_that_refuses_the_caller_fails_the_transfer() {
    let mut c = queued_call();
    let fx = every_agent_busy(&mut c);
    let enqueue = fx
        .iter()
        .find_map(|e| match e {
            Effect::Send(cmd) if cmd.action_name() == "enqueue" => Some(cmd.command_id().to_string()),
            _ => None,
        })
        .unwrap();
    let t = c.t;
    let fx = c.input(Input::CommandFailed {
        command_id: enqueue,
        action: "enqueue".into(),
        role: Role::Caller,
        call_gone: false,
        error: "queue \"support-wait\" is full".into(),
        at: t,
    });
    assert!(transfer_statuses(&fx).contains(&TransferStatus::Failed), "{fx:?}");
    assert_eq!(c.s.phase(), Phase::Ivr);
}

#[test]
fn without_a_queue_the_caller_goes_back_to_the_ivr_as_before() {
    let mut c = Call::answered();
    let fx = every_agent_busy(&mut c);
    assert!(transfer_statuses(&fx).contains(&TransferStatus::Failed));
    assert!(!names(&fx).contains(&"enqueue"));
}

#[test]
fn the_first_in_line_tries_the_agents_at_each_announcement_and_says_where_it_waits() {
    let mut c = queued_call();
    every_agent_busy(&mut c);
    assert_eq!(c.s.waiting_in_queue(), None, "not in line until Telnyx says so");
    c.on_caller("call.enqueued", json!({"queue": "support-wait", "current_position": 1}));
    let (queue, _, at_head) = c.s.waiting_in_queue().expect("in line");
    assert_eq!((queue.as_str(), at_head), ("support-wait", true));
    c.speak_ended(CALLER);
    c.speak_ended(CALLER);
    let fx = c.on_caller("call.playback.ended", json!({"status": "completed"}));
    assert_eq!(dials(&fx).len(), 1, "{fx:?}");
    let t = c.t;
    assert!(dials(&c.input(Input::QueueHead { at: t })).is_empty(), "a round is under way");
}

fn callback_call() -> Call {
    let queue = WaitQueueConfig {
        name: "support-wait".into(),
        max_wait_secs: 120,
        callback: Some(crate::settings::CallbackConfig::default()),
        ..Default::default()
    };
    let s = SessionSettings { wait_queue: Some(queue), ..Default::default() };
    let mut c = Call::with(Arc::new(s));
    c.start();
    every_agent_busy(&mut c);
    c.on_caller("call.enqueued", json!({"queue": "support-wait", "current_position": 1}));
    c
}

fn timed_out(c: &mut Call) -> Vec<Effect> {
    c.on_caller(
        "call.dequeued",
        json!({"queue": "support-wait", "queue_position": 1, "reason": "timeout", "wait_time_secs": 120}),
    )
}

fn callbacks(fx: &[Effect]) -> Vec<(String, Option<String>, Option<String>)> {
    events(fx)
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::Callback { status, number, detail, .. } => Some((status, number, detail)),
            _ => None,
        })
        .collect()
}

fn texts(fx: &[Effect]) -> Vec<CallerText> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::TextCaller(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn after_the_longest_wait_a_callback_is_offered_and_a_key_accepts_it_texts_the_caller_and_ends_the_call() {
    let mut c = callback_call();
    let fx = timed_out(&mut c);
    assert_eq!(callbacks(&fx), [("offered".into(), Some("+15551230000".into()), None)]);
    assert_eq!(transfer_statuses(&fx), [TransferStatus::Dequeued, TransferStatus::Failed]);
    let Some(Action::GatherUsingSpeak(menu)) = actions(&fx).into_iter().find(|a| a.name() == "gather_using_speak")
    else {
        panic!("{fx:?}")
    };
    let prompt = menu.payload.unwrap();
    assert!(
        prompt.starts_with("I'm sorry, nobody could take your call in time. Press 9 or say call me back"),
        "{prompt}"
    );
    assert!(menu.valid_digits.unwrap().contains('9'), "the menu takes the accept key");

    let fx = c.on_caller("call.gather.ended", json!({"digits": "9", "status": "valid"}));
    assert_eq!(callbacks(&fx), [("requested".into(), Some("+15551230000".into()), Some("pressed 9".into()))]);
    let sms = texts(&fx);
    assert_eq!(sms.len(), 1, "{fx:?}");
    assert_eq!(sms[0].to, "+15551230000");
    assert_eq!(sms[0].text, "We will call you back at +15551230000 as soon as an agent is free.");
    assert_eq!(sms[0].key, format!("{}:callback", c.s.id()));
    let Some(Action::Speak(bye)) = actions(&fx).into_iter().find(|a| a.name() == "speak") else { panic!("{fx:?}") };
    assert!(bye.payload.unwrap().starts_with("Thank you. We will call you back"));
    assert!(dials(&fx).is_empty() && !names(&fx).contains(&"transfer"), "no transfer from the key");
    // (The position line said on joining the queue ends first.)
    let fx: Vec<Effect> = (0..3).flat_map(|_| c.speak_ended(CALLER)).collect();
    assert_eq!(names(&fx), ["hangup"], "the call ends once it is said");
    // A repeated key changes nothing.
    assert!(callbacks(&c.on_caller("call.gather.ended", json!({"digits": "9", "status": "valid"}))).is_empty());
}

#[test]
fn saying_an_accept_phrase_accepts_the_callback_and_another_key_withdraws_the_offer() {
    let mut c = callback_call();
    timed_out(&mut c);
    let fx = c.on_caller(
        "call.transcription",
        json!({"transcription_data": {"transcript": "yes please Call me back", "is_final": true, "transcription_track": "inbound"}}),
    );
    assert_eq!(
        callbacks(&fx),
        [("requested".into(), Some("+15551230000".into()), Some("said \"call me back\"".into()))]
    );
    assert_eq!(texts(&fx).len(), 1);

    let mut c = callback_call();
    timed_out(&mut c);
    let fx = c.on_caller("call.gather.ended", json!({"digits": "2", "status": "valid"}));
    assert!(callbacks(&fx).is_empty());
    let fx = c.on_caller(
        "call.transcription",
        json!({"transcription_data": {"transcript": "call me back", "is_final": true, "transcription_track": "inbound"}}),
    );
    assert!(callbacks(&fx).is_empty() && texts(&fx).is_empty(), "the offer was withdrawn");
}

#[test]
fn without_a_callback_section_the_timeout_goes_back_to_the_menu_without_an_offer() {
    let mut c = queued_call();
    every_agent_busy(&mut c);
    c.on_caller("call.enqueued", json!({"queue": "support-wait", "current_position": 1}));
    let fx = timed_out(&mut c);
    assert!(callbacks(&fx).is_empty());
    assert!(!c
        .on_caller("call.gather.ended", json!({"digits": "9", "status": "valid"}))
        .iter()
        .any(|e| matches!(e, Effect::TextCaller(_))));
}

/// A caller who accepted the callback and was hung up on.
fn callback_requested() -> Call {
    let mut c = callback_call();
    timed_out(&mut c);
    c.on_caller("call.gather.ended", json!({"digits": "9", "status": "valid"}));
    let fx = c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing", "hangup_source": "callee"}));
    assert!(!events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { .. })), "the callback is pending");
    c
}

/// The leg of the callback's call to the caller.
const CALLED_BACK: &str = "v3:called-back";

fn on_called_back(c: &mut Call, event_type: &str, mut extra: Value) -> Vec<Effect> {
    extra["call_control_id"] = json!(CALLED_BACK);
    extra["client_state"] = json!(c.s.tag(Role::Caller, None));
    c.event(event_type, extra)
}

#[test]
fn a_pending_callback_dials_the_agents_each_round_then_the_caller_and_bridges_them_in_the_same_conversation() {
    let mut c = callback_requested();
    assert!(!c.s.is_settled(), "the conversation goes on while its callback is pending");
    assert_eq!(c.s.callback_retry(), Some(std::time::Duration::from_secs(30)));

    // Round 1: both agents busy; the callback waits for the next round.
    let t = c.t;
    let fx = c.input(Input::CallbackDue { at: t });
    let d = dials(&fx);
    assert_eq!((d.len(), d[0].to.as_str(), d[0].link_to.as_deref()), (1, "+18005550201", None), "{fx:?}");
    assert_eq!(c.s.callback_retry(), None, "a round is under way");
    c.on_agent("v3:cb-1", 3, "call.initiated", json!({}));
    let fx = c.on_agent("v3:cb-1", 3, "call.hangup", json!({"hangup_cause": "user_busy"}));
    assert_eq!(dials(&fx)[0].to, "+18005550202");
    c.on_agent("v3:cb-2", 4, "call.initiated", json!({}));
    let fx = c.on_agent("v3:cb-2", 4, "call.hangup", json!({"hangup_cause": "user_busy"}));
    assert!(dials(&fx).is_empty() && !names(&fx).contains(&"speak"), "{fx:?}");
    assert_eq!(c.s.callback_retry(), Some(std::time::Duration::from_secs(30)), "waits for the next round");

    // Round 2: the first agent answers, is briefed, then the caller is called.
    let t = c.t;
    c.input(Input::CallbackDue { at: t });
    c.on_agent("v3:cb-3", 5, "call.initiated", json!({}));
    let fx = c.on_agent("v3:cb-3", 5, "call.answered", json!({}));
    assert!(names(&fx).contains(&"speak"), "briefed first: {fx:?}");
    let fx = c.on_agent("v3:cb-3", 5, "call.speak.ended", json!({"status": "completed"}));
    let d = dials(&fx);
    assert_eq!((d.len(), d[0].to.as_str(), d[0].link_to.as_deref()), (1, "+15551230000", Some("v3:cb-3")), "{fx:?}");
    let placed = callbacks(&fx);
    assert_eq!(placed[0].0, "placed");
    let original = events(&fx)
        .into_iter()
        .find_map(|e| match e {
            DomainEvent::Callback { original_call_control_id, .. } => original_call_control_id,
            _ => None,
        })
        .unwrap();
    assert_eq!(original, CALLER, "linked to the original call");

    on_called_back(
        &mut c,
        "call.initiated",
        json!({"direction": "outgoing", "from": "+18005550100", "to": "+15551230000"}),
    );
    let fx = on_called_back(&mut c, "call.answered", json!({}));
    assert_eq!(callbacks(&fx)[0].0, "answered");
    let bridge = fx
        .iter()
        .find_map(|e| match e {
            Effect::Send(Command {
                role: Role::Caller,
                request: Request::Action(Action::Bridge(b)),
                call_control_id,
            }) => Some((b.call_control_id.clone(), call_control_id.clone())),
            _ => None,
        })
        .expect("caller bridged with the agent");
    assert_eq!(bridge, (Some("v3:cb-3".into()), Some(CALLED_BACK.into())));
    let fx = c.on_agent("v3:cb-3", 5, "call.bridged", json!({}));
    assert_eq!(transfer_statuses(&fx), [TransferStatus::Connected]);
    assert_eq!(c.s.phase(), Phase::WithAgent);

    // The call ends as any call with an agent.
    let fx = on_called_back(&mut c, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    assert!(releases(&fx).iter().any(|(ccid, _, _)| ccid == "v3:cb-3") || names(&fx).contains(&"hangup"), "{fx:?}");
    c.on_agent("v3:cb-3", 5, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    let ended: Vec<String> = events(&c.log)
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::CallEnded { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(ended, ["completed_with_agent"]);
    assert!(c.s.is_settled());
}

#[test]
fn a_caller_who_does_not_answer_the_callback_ends_it_unanswered() {
    let mut c = callback_requested();
    let t = c.t;
    c.input(Input::CallbackDue { at: t });
    c.on_agent("v3:cb-1", 3, "call.initiated", json!({}));
    c.on_agent("v3:cb-1", 3, "call.answered", json!({}));
    c.on_agent("v3:cb-1", 3, "call.speak.ended", json!({"status": "completed"}));
    on_called_back(&mut c, "call.initiated", json!({"direction": "outgoing"}));
    let fx = on_called_back(&mut c, "call.hangup", json!({"hangup_cause": "timeout"}));
    assert_eq!(callbacks(&fx).iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["unanswered"]);
    assert!(releases(&fx).iter().any(|(ccid, _, _)| ccid == "v3:cb-1"), "the agent is let go: {fx:?}");
    c.on_agent("v3:cb-1", 3, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    let ended =
        events(&c.log).into_iter().any(|e| e == DomainEvent::CallEnded { reason: "callback_unanswered".into() });
    assert!(ended, "{:#?}", events(&c.log));
    assert_eq!(c.s.callback_retry(), None);
}

#[test]
fn a_callback_whose_call_to_the_caller_cannot_be_placed_ends_unanswered_and_lets_the_agent_go() {
    let mut c = callback_requested();
    let t = c.t;
    c.input(Input::CallbackDue { at: t });
    c.on_agent("v3:cb-1", 3, "call.initiated", json!({}));
    c.on_agent("v3:cb-1", 3, "call.answered", json!({}));
    let fx = c.on_agent("v3:cb-1", 3, "call.speak.ended", json!({"status": "completed"}));
    let dial = fx
        .iter()
        .find_map(|e| match e {
            Effect::Send(cmd) if cmd.role == Role::Caller && matches!(cmd.request, Request::Dial(_)) => {
                Some(cmd.command_id().to_string())
            }
            _ => None,
        })
        .expect("the caller is dialled");
    let t = c.t;
    let fx = c.input(Input::CommandFailed {
        command_id: dial,
        action: "dial".into(),
        role: Role::Caller,
        call_gone: false,
        error: "invalid number".into(),
        at: t,
    });
    assert_eq!(
        callbacks(&fx).iter().map(|c| (c.0.as_str(), c.2.as_deref())).collect::<Vec<_>>(),
        [("unanswered", Some("invalid number"))]
    );
    assert!(releases(&fx).iter().any(|(ccid, _, _)| ccid == "v3:cb-1"), "{fx:?}");
    c.on_agent("v3:cb-1", 3, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    assert!(events(&c.log).contains(&DomainEvent::CallEnded { reason: "callback_unanswered".into() }));
}
