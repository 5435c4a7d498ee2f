//! Every answered agent leg ends, and one agent per decision: each way an
//! agent leg stops being wanted ends with that leg hung up and the record
//! saying how it ended.

use super::*;

const A1: &str = "v3:agent-1";
const A2: &str = "v3:agent-2";

fn failed(command_id: &str, action: &str, role: Role, call_gone: bool, at: DateTime<Utc>) -> Input {
    let error =
        if call_gone { "call has already ended (90018)" } else { "Telnyx API server error 500 after 5 attempts" };
    Input::CommandFailed {
        command_id: command_id.into(),
        action: action.into(),
        role,
        call_gone,
        error: error.into(),
        at,
    }
}

fn hung_up(cause: &str) -> Value {
    json!({"hangup_cause": cause, "hangup_source": "caller"})
}

/// The command id of the one command named `action` among `fx`.
fn command_id(fx: &[Effect], action: &str) -> String {
    let ids: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) if c.action_name() == action => Some(c.command_id().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 1, "one {action} in {fx:?}");
    ids[0].clone()
}

/// The agent legs bridged to the caller, in order.
fn bridged(log: &[Effect]) -> Vec<String> {
    actions(log)
        .iter()
        .filter_map(|a| match a {
            Action::Bridge(b) => b.call_control_id.clone(),
            _ => None,
        })
        .collect()
}

/// How each agent leg's life was recorded: joined, answered, ended (with its cause).
fn agent_record(log: &[Effect], ccid: &str) -> (bool, bool, Option<Option<String>>) {
    let mut r = (false, false, None);
    for e in events(log) {
        match e {
            DomainEvent::LegJoined { role: Role::Agent, call_control_id, .. } if call_control_id == ccid => r.0 = true,
            DomainEvent::LegAnswered { role: Role::Agent, call_control_id } if call_control_id == ccid => r.1 = true,
            DomainEvent::LegEnded { role: Role::Agent, call_control_id, cause, .. } if call_control_id == ccid => {
                assert!(r.2.is_none(), "{ccid} ended twice in the record");
                r.2 = Some(cause)
            }
            _ => {}
        }
    }
    r
}

/// The call is over, every agent leg ended in the record (none left to
/// release), the end recorded once, and never two agents bridged at once.
fn assert_no_agent_left(c: &Call, agents: &[&str]) {
    for a in agents {
        let (joined, _, ended) = agent_record(&c.log, a);
        assert!(joined && ended.is_some(), "{a}: joined {joined}, ended {ended:?}");
    }
    let ends = events(&c.log).iter().filter(|e| matches!(e, DomainEvent::CallEnded { .. })).count();
    assert_eq!(ends, 1, "the end is recorded once");
    assert!(c.s.is_settled());
    check_one_agent_at_a_time(&c.log).unwrap();
}

/// The first agent's dial fails for good; the second agent's phone rings and
/// hangs up with `cause`.
fn both_attempts_fail(c: &mut Call, cause: &str) -> Vec<Effect> {
    let dial = transfer(c);
    let t = c.t;
    c.input(failed(&dial, "dial", Role::Agent, false, t));
    c.on_agent(A2, 2, "call.initiated", json!({}));
    c.on_agent(A2, 2, "call.hangup", json!({"hangup_cause": cause}))
}

/// Presses 0: the first agent's dial id.
fn transfer(c: &mut Call) -> String {
    let fx = c.press("0");
    dials(&fx)[0].command_id.clone().unwrap()
}

/// Agent `ccid` of `attempt` is reached, answers and hears the briefing: the bridge's command id.
fn briefed(c: &mut Call, ccid: &str, attempt: u32) -> String {
    c.on_agent(ccid, attempt, "call.initiated", json!({}));
    let fx = c.on_agent(ccid, attempt, "call.answered", json!({}));
    assert_eq!(names(&fx), vec!["speak"], "the agent is briefed");
    let fx = c.on_agent(ccid, attempt, "call.speak.ended", json!({"status": "completed"}));
    command_id(&fx, "bridge")
}

/// The caller is bridged to `agent`, then hangs up; the agent's leg goes with the bridge.
fn connected_then_over(c: &mut Call, agent: &str, attempt: u32) {
    let fx = c.on_caller("call.bridged", json!({}));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::Connected]);
    let fx = c.on_caller("call.hangup", hung_up("normal_clearing"));
    assert_eq!(releases(&fx).len(), 1);
    c.on_agent(agent, attempt, "call.hangup", hung_up("normal_clearing"));
}

#[test]
fn an_attempt_that_fails_after_its_agent_answered_releases_that_agent() {
    let mut c = Call::answered();
    transfer(&mut c);
    let bridge = briefed(&mut c, A1, 1);
    // The bridge fails for good: the briefed agent is let go before the next is dialled.
    let t = c.t;
    let fx = c.input(failed(&bridge, "bridge", Role::Caller, false, t));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::AttemptFailed, TransferStatus::Dialing]);
    let released = releases(&fx);
    assert_eq!((released.len(), released[0].0.as_str(), released[0].2), (1, A1, 0), "{fx:?}");
    assert_eq!(dials(&fx)[0].to, "+18005550202");
    let tag = LegTag::decode(dials(&fx)[0].client_state.as_deref()).unwrap();
    assert_eq!(tag.attempt, Some(2));
    // Its hangup is recorded; a late speak or bridge event from it changes nothing.
    let fx = c.on_agent(A1, 1, "call.hangup", hung_up("normal_clearing"));
    assert_eq!(agent_record(&fx, A1).2, Some(Some("normal_clearing".into())));
    assert!(c.on_agent(A1, 1, "call.bridged", json!({})).is_empty());
    // The next agent is the one bridged.
    let bridge2 = briefed(&mut c, A2, 2);
    assert!(!bridge2.is_empty());
    connected_then_over(&mut c, A2, 2);
    assert_eq!(bridged(&c.log), vec![A1.to_string(), A2.to_string()], "the bridge to the first never happened");
    assert_no_agent_left(&c, &[A1, A2]);
}

#[test]
fn a_leg_that_answers_after_its_dial_was_given_up_is_released() {
    let mut c = Call::answered();
    let dial = transfer(&mut c);
    // The dial fails for good, but it had run: its leg shows up after the next agent is dialled.
    let t = c.t;
    let fx = c.input(failed(&dial, "dial", Role::Agent, false, t));
    assert_eq!(dials(&fx)[0].to, "+18005550202");
    let fx = c.on_agent(A1, 1, "call.initiated", json!({}));
    let released = releases(&fx);
    assert_eq!(released.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), vec![A1], "released at once");
    assert!(!transfer_statuses(&fx).contains(&TransferStatus::Ringing), "not the attempt under way");
    let fx = c.on_agent(A1, 1, "call.answered", json!({}));
    assert!(names(&fx).is_empty() && releases(&fx).is_empty(), "no briefing, no second hangup: {fx:?}");
    assert!(agent_record(&fx, A1).1, "the late answer is recorded");
    // The attempt under way goes on; the late leg's hangup is recorded.
    briefed(&mut c, A2, 2);
    let fx = c.on_agent(A1, 1, "call.hangup", hung_up("normal_clearing"));
    assert!(agent_record(&fx, A1).2.is_some());
    connected_then_over(&mut c, A2, 2);
    assert_eq!(bridged(&c.log), vec![A2.to_string()]);
    assert_no_agent_left(&c, &[A1, A2]);
}

#[test]
fn a_caller_who_hangs_up_before_the_dial_is_answered_still_has_the_agent_released() {
    let mut c = Call::answered();
    let dial = transfer(&mut c);
    let fx = c.on_caller("call.hangup", hung_up("normal_clearing"));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::Abandoned]);
    assert!(releases(&fx).is_empty(), "no leg known yet");
    assert!(!events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { .. })), "the dial is unanswered");
    // Telnyx answers the dial: the new leg is released at once, and recorded.
    let t = c.t;
    let fx = c.input(Input::Dialled {
        command_id: dial,
        call_control_id: A1.into(),
        call_leg_id: Some("leg-b".into()),
        call_session_id: Some("sess-b".into()),
        at: t,
    });
    assert_eq!(releases(&fx)[0].0, A1);
    assert!(agent_record(&fx, A1).0);
    // Its webhooks follow: known, nothing sent twice; its end ends the conversation.
    let fx = c.on_agent(A1, 1, "call.initiated", json!({}));
    assert!(fx.is_empty(), "{fx:?}");
    let fx = c.on_agent(A1, 1, "call.hangup", json!({"hangup_cause": "originator_cancel"}));
    assert!(events(&fx)
        .iter()
        .any(|e| matches!(e, DomainEvent::CallEnded { reason } if reason == "caller_hangup_during_transfer")));
    assert_eq!(agent_record(&c.log, A1).2, Some(Some("originator_cancel".into())));
    assert_no_agent_left(&c, &[A1]);
}

#[test]
fn an_agent_who_answers_after_the_caller_hung_up_is_released() {
    let mut c = Call::answered();
    transfer(&mut c);
    c.on_agent(A1, 1, "call.initiated", json!({}));
    let fx = c.on_caller("call.hangup", hung_up("normal_clearing"));
    let (ccid, id, round) = releases(&fx).remove(0);
    assert_eq!((ccid.as_str(), round), (A1, 0));
    // The agent picks up before the hangup reaches their phone: no briefing, no second hangup.
    let fx = c.on_agent(A1, 1, "call.answered", json!({}));
    assert!(names(&fx).is_empty() && releases(&fx).is_empty(), "{fx:?}");
    // Telnyx confirms with the leg's hangup.
    let fx = c.on_agent(A1, 1, "call.hangup", hung_up("normal_clearing"));
    assert!(events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { .. })));
    assert!(!id.is_empty());
    assert_no_agent_left(&c, &[A1]);
}

#[test]
fn an_agent_leg_of_a_transfer_that_failed_is_released() {
    let mut c = Call::answered();
    let fx = both_attempts_fail(&mut c, "call_rejected");
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::AttemptFailed, TransferStatus::Failed]);
    assert_eq!(c.s.phase(), Phase::Ivr, "the decision is abandoned: the caller is back with the IVR");
    // The first dial had run after all: its agent answers, and is let go.
    let fx = c.on_agent(A1, 1, "call.answered", json!({}));
    assert_eq!(releases(&fx)[0].0, A1);
    assert!(names(&fx).is_empty(), "the caller's IVR goes on undisturbed: {fx:?}");
    c.on_agent(A1, 1, "call.hangup", hung_up("normal_clearing"));
    c.on_caller("call.hangup", hung_up("normal_clearing"));
    assert!(bridged(&c.log).is_empty());
    assert_no_agent_left(&c, &[A1, A2]);
}

#[test]
fn a_release_is_sent_again_with_the_same_command_id_until_the_leg_is_gone() {
    let mut c = Call::answered();
    transfer(&mut c);
    briefed(&mut c, A1, 1);
    let fx = c.on_caller("call.hangup", hung_up("normal_clearing"));
    let (ccid, id, round) = releases(&fx).remove(0);
    assert_eq!((ccid.as_str(), round), (A1, 0));
    // Two rounds fail for good (500s, timeouts): sent again, same command id, next round.
    for expected in 1..=2 {
        let t = c.t;
        let fx = c.input(failed(&id, "hangup", Role::Agent, false, t));
        assert_eq!(releases(&fx), vec![(A1.to_string(), id.clone(), expected)]);
        assert!(!events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { .. })));
    }
    // Survives a restart mid-release.
    let saved = serde_json::to_string(&c.s).unwrap();
    c.s = serde_json::from_str::<Session>(&saved).unwrap().with_settings(settings(TransferMode::Warm));
    assert!(!c.s.is_settled());
    // Telnyx answers that the leg is gone: ended in the record, and the conversation with it.
    let t = c.t;
    let fx = c.input(failed(&id, "hangup", Role::Agent, true, t));
    assert!(
        matches!(events(&fx)[..], [DomainEvent::LegEnded { role: Role::Agent, .. }, DomainEvent::CallEnded { .. }]),
        "{fx:?}"
    );
    let failures = events(&c.log).iter().filter(|e| matches!(e, DomainEvent::CommandFailed { .. })).count();
    assert_eq!(failures, 1, "the first failure is recorded, not every round");
    // The leg's own hangup webhook, late, changes nothing.
    assert!(c.on_agent(A1, 1, "call.hangup", hung_up("normal_clearing")).is_empty());
    assert_no_agent_left(&c, &[A1]);
}

#[test]
fn a_second_decision_never_adopts_a_late_leg_of_the_first() {
    let mut c = Call::answered();
    both_attempts_fail(&mut c, "timeout");
    // The caller asks again: a new decision, whose first attempt is the conversation's third.
    let fx = c.press("0");
    let tag = LegTag::decode(dials(&fx)[0].client_state.as_deref()).unwrap();
    assert_eq!(tag.attempt, Some(3));
    // The first decision's first leg shows up now: released, not taken for the new attempt.
    let fx = c.on_agent(A1, 1, "call.initiated", json!({}));
    assert_eq!(releases(&fx)[0].0, A1);
    let a3 = "v3:agent-3";
    let bridge = briefed(&mut c, a3, 3);
    assert!(!bridge.is_empty());
    c.on_agent(A1, 1, "call.hangup", hung_up("originator_cancel"));
    connected_then_over(&mut c, a3, 3);
    assert_no_agent_left(&c, &[A1, A2, a3]);
}

fn checked(ccid: &str, role: Role, alive: bool, at: DateTime<Utc>) -> Input {
    Input::LegChecked(LegCheck { call_control_id: ccid.into(), role, alive, at })
}

#[test]
fn legs_found_gone_while_ivrx_was_not_listening_end_the_call() {
    let mut c = Call::answered();
    transfer(&mut c);
    c.on_agent(A1, 1, "call.initiated", json!({}));
    c.on_agent(A1, 1, "call.answered", json!({}));
    // ivrx was down when the caller hung up; asked, Telnyx says the caller's leg is gone.
    let t = c.t;
    let fx = c.input(checked(A1, Role::Agent, true, t));
    assert!(fx.is_empty(), "the agent is still needed: {fx:?}");
    let fx = c.input(checked(CALLER, Role::Caller, false, t));
    let ended = events(&fx).into_iter().find_map(|e| match e {
        DomainEvent::LegEnded { role: Role::Caller, cause, source, .. } => Some((cause, source)),
        _ => None,
    });
    assert_eq!(ended, Some((Some(ENDED_UNOBSERVED.to_string()), Some("reconciliation".to_string()))));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::Abandoned]);
    assert_eq!(releases(&fx)[0].0, A1, "the agent no caller needs is released");
    // The agent's end was not heard either: Telnyx says it is gone.
    let fx = c.input(checked(A1, Role::Agent, false, t));
    assert_eq!(agent_record(&fx, A1).2, Some(Some(ENDED_UNOBSERVED.to_string())));
    assert!(events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { .. })));
    // Asking again changes nothing.
    assert!(c.input(checked(A1, Role::Agent, false, t)).is_empty());
    assert!(c.input(checked(CALLER, Role::Caller, false, t)).is_empty());
    assert_no_agent_left(&c, &[A1]);
}

#[test]
fn an_agent_leg_up_that_no_caller_needs_is_released_when_found() {
    let mut c = Call::answered();
    c.on_caller("call.hangup", hung_up("normal_clearing"));
    assert!(c.s.is_settled());
    // A leg the record shows answered and never ended, that this session does not know.
    let t = c.t;
    let fx = c.input(checked(A1, Role::Agent, true, t));
    let (ccid, id, round) = releases(&fx).remove(0);
    assert_eq!((ccid.as_str(), round), (A1, 0));
    assert!(!c.s.is_settled(), "not settled while it is up");
    // Still up at the next check (the first hangup failed): sent again, same command id.
    let fx = c.input(checked(A1, Role::Agent, true, t));
    assert_eq!(releases(&fx), vec![(A1.to_string(), id, 1)]);
    let fx = c.on_agent(A1, 1, "call.hangup", hung_up("normal_clearing"));
    assert_eq!(agent_record(&fx, A1).2, Some(Some("normal_clearing".into())));
    assert!(c.s.is_settled());
    // A caller or Symbl leg this conversation does not know is left alone.
    assert!(c.input(checked("v3:other", Role::Caller, false, t)).is_empty());
}
