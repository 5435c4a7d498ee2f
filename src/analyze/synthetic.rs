//! `--synthetic N`: synthetic but realistic conversations for demos and
//! benchmarks. Callers follow varied templates (calm billing or support
//! questions, frustrated callers, callers asking for a person, buyers,
//! callers about to leave, keypad users); every utterance is scored by the
//! engine and the caller's go through the escalation policy, so what is
//! stored is what ivrx would have decided. Transfers ring agents from the
//! configured queues, who answer, do not answer, or lose the caller.
//!
//! Calls are stored in the order they started, as in a live store. What
//! call `i` says and how its transfer goes depend only on the seed and `i`;
//! start times depend on the seed and N. The same seed and N give the same
//! calls; ids are `syn-<seed>-<i>`, so generating them again adds nothing.

use chrono::{DateTime, Duration, Utc};

use super::record::CallRecorder;
use super::rng::Rng;
use super::AnalyzeError;
use crate::config::Config;
use crate::intel::Scorer;
use crate::keypad::{KeyRoute, Keypad};
use crate::policy::Reason;
use crate::session::{DomainEvent, Role, Speaker, TransferStatus};
use crate::store::{Journal, Transition};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SyntheticOptions {
    /// How many conversations.
    pub calls: u64,
    /// Seed.
    pub seed: u64,
    /// First day of the period the calls start in.
    pub start: DateTime<Utc>,
    /// Days in the period.
    pub days: u32,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        Self { calls: 1000, seed: 7, start: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(), days: 28 }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Generated {
    /// Conversations.
    pub calls: u64,
    /// Of which the policy or the keypad decided to transfer.
    pub decided: u64,
    /// Of which reached an agent.
    pub transferred: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persona {
    CalmBilling,
    CalmSupport,
    Frustrated,
    AsksForHuman,
    Buyer,
    Churn,
    Keypad,
}

/// (persona, weight in percent)
const PERSONAS: &[(Persona, u64)] = &[
    (Persona::CalmBilling, 18),
    (Persona::CalmSupport, 17),
    (Persona::Frustrated, 25),
    (Persona::AsksForHuman, 14),
    (Persona::Buyer, 10),
    (Persona::Churn, 8),
    (Persona::Keypad, 8),
];

/// Relative call volume per hour of the day (UTC).
const HOUR_WEIGHTS: [u64; 24] = [1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 19, 17, 18, 19, 18, 15, 12, 9, 7, 5, 4, 2, 1];

const PRODUCTS: &[&str] = &["internet", "router", "tv box", "phone line", "wifi", "modem"];
const WHEN: &[&str] = &["yesterday", "monday", "last week", "this morning", "the weekend"];
const MONTHS: &[&str] = &["january", "february", "march", "last month"];
const AGENTS: &[&str] = &["sam", "alex", "jordan", "priya", "maria", "li"];

type Stages = &'static [&'static [&'static str]];

const CALM_BILLING: Stages = &[
    &[
        "hi i have a question about my bill",
        "hello i was looking at my invoice and had a question",
        "hi there i wanted to check a charge on my account",
    ],
    &[
        "it looks like i was charged twice for {month}",
        "there is a fee of {amount} dollars i do not recognize",
        "my bill went up by {amount} dollars this month",
    ],
    &["okay that makes sense", "oh i see that explains it", "alright thank you for clarifying"],
    &["great thats all i needed thanks", "perfect thank you have a nice day", "thanks thats all"],
];
const CALM_SUPPORT: Stages = &[
    &[
        "my {product} has been a bit slow in the evenings",
        "i have a quick question about setting up my {product}",
        "the light on my {product} is blinking orange",
    ],
    &["i already restarted it once", "i tried unplugging it for a minute", "yes i can see the settings page"],
    &["okay i will try that now", "alright that seems to work", "good it is back to normal"],
    &["thank you goodbye", "thanks thats all", "great thank you so much"],
];
const FRUSTRATED: Stages = &[
    &[
        "my {product} has been down since {when}",
        "i have no {product} again",
        "my {product} keeps dropping every few minutes",
    ],
    &["i already restarted it three times", "i did all of that already", "i have called about this twice already"],
    &[
        "this is ridiculous nothing is working",
        "i have been waiting for hours and it is still broken",
        "this is the third time this month and i am really fed up",
    ],
    &[
        "i am so angry i work from home and i lost a whole day",
        "this is unacceptable i want a refund",
        "you people keep wasting my time",
    ],
    &["this is useless", "are you even listening to me", "i am done with this terrible service"],
];
const ASKS_FOR_HUMAN: Stages = &[
    &["i need help with my account", "i have a problem with my {product}", "i got a letter about my contract"],
    &[
        "can i speak to a real person please",
        "i want to talk to an agent",
        "representative",
        "operator please",
        "let me talk to a human",
    ],
    &["i said i want a person", "agent agent agent", "please just transfer me to someone"],
];
const BUYER: Stages = &[
    &[
        "i am thinking about upgrading my plan",
        "i saw an ad for the new fiber plan",
        "i would like to add a second line",
    ],
    &[
        "how much is the premium package",
        "what is the price for the faster plan",
        "is there a discount if i sign up for a year",
    ],
    &["that sounds great i would like to buy it", "perfect i want to upgrade today", "sounds good sign me up"],
];
const CHURN: Stages = &[
    &["i want to cancel my account", "i am thinking about switching providers", "how do i cancel my service"],
    &[
        "your competitor offers a better price",
        "i am moving and your service is too expensive",
        "i have had too many outages",
    ],
    &["just cancel it please", "i have made up my mind i am leaving", "i will call my lawyer if this is not fixed"],
];

fn fill(template: &str, rng: &mut Rng) -> String {
    let mut s = template.to_string();
    for (slot, options) in [("{product}", PRODUCTS), ("{when}", WHEN), ("{month}", MONTHS)] {
        if s.contains(slot) {
            s = s.replace(slot, rng.pick(options).copied().unwrap_or_default());
        }
    }
    if s.contains("{amount}") {
        s = s.replace("{amount}", &rng.range(5, 120).to_string());
    }
    s
}

fn weighted<T: Copy>(rng: &mut Rng, items: impl Iterator<Item = (T, u64)> + Clone) -> Option<T> {
    let total: u64 = items.clone().map(|(_, w)| w).sum();
    let mut x = rng.range(0, total.max(1));
    for (item, w) in items {
        if x < w {
            return Some(item);
        }
        x -= w;
    }
    None
}

/// Generates one conversation's events.
fn conversation(
    i: u64,
    started: DateTime<Utc>,
    options: &SyntheticOptions,
    scorer: &dyn Scorer,
    config: &Config,
) -> (Vec<crate::session::Recorded>, Generated) {
    let policy = &config.policy;
    let mut rng = Rng::new(options.seed ^ i.wrapping_mul(0xA24B_AED4_963E_E407));
    let persona = weighted(&mut rng, PERSONAS.iter().copied()).unwrap_or(Persona::CalmBilling);
    let id = format!("syn-{}-{i:06}", options.seed);
    let from = format!("+1555{:07}", rng.range(0, 10_000_000));
    let mut rec =
        CallRecorder::start(&id, started, "synthetic", Some(from), Some("+18005550100".into()), scorer, policy);
    rec.push(0, DomainEvent::IvrSaid { text: "Thank you for calling Acme Communications. How can I help?".into() });
    let mut t: u64 = rng.range(6_000, 12_000);
    let mut out = Generated { calls: 1, ..Generated::default() };

    let stages = match persona {
        Persona::CalmBilling => CALM_BILLING,
        Persona::CalmSupport => CALM_SUPPORT,
        Persona::Frustrated | Persona::Keypad => FRUSTRATED,
        Persona::AsksForHuman => ASKS_FOR_HUMAN,
        Persona::Buyer => BUYER,
        Persona::Churn => CHURN,
    };
    // Some callers give up on the template early or skip a stage.
    let keep = if persona == Persona::Keypad {
        1
    } else {
        stages.len() - rng.range(0, 2).min(stages.len() as u64 - 1) as usize
    };
    for stage in stages.iter().take(keep) {
        let Some(line) = rng.pick(stage) else { continue };
        let text = fill(line, &mut rng);
        let latency = rng.range(3, 40);
        rec.utterance(t, Speaker::Caller, &text, latency);
        if rec.decision().is_some() {
            t += latency;
            break;
        }
        let reply = if text.contains("thank") || text.contains("thanks") {
            "You're welcome."
        } else {
            "I understand. Tell me more."
        };
        rec.push(t + 1_500, DomainEvent::IvrSaid { text: reply.into() });
        t += rng.range(5_000, 14_000) + (text.len() as u64) * 40;
    }
    if persona == Persona::Keypad && rec.decision().is_none() {
        // Most keypad callers press the operator key; the others a queue of the menu.
        let keys = Keypad::new(&config.ivr, policy).transfers();
        let operator = rng.chance(0.7);
        let chosen = match keys.split_first() {
            Some((first, [])) => Some(first),
            Some((first, _)) if operator => Some(first),
            Some((_, [only])) => Some(only),
            Some((_, menu)) => rng.pick(menu),
            None => None,
        };
        if let Some(&(key, KeyRoute::Transfer { reason, queue, choice })) = chosen {
            rec.push(t, DomainEvent::Dtmf { digits: key.into(), choice: Some(choice.into()) });
            rec.menu_decision(t + 20, reason, queue);
            t += 20;
        }
    }
    let Some(decision) = rec.decision().cloned() else {
        let calm = matches!(persona, Persona::CalmBilling | Persona::CalmSupport | Persona::Buyer);
        let reason = if calm && rng.chance(0.9) { "caller_done" } else { "caller_hangup" };
        if reason == "caller_done" {
            rec.push(t, DomainEvent::IvrSaid { text: "Thank you for calling Acme. Goodbye.".into() });
        }
        return (rec.end(t + rng.range(2_000, 5_000), reason), out);
    };
    out.decided = 1;
    let agents = config.queues.get(&decision.queue).map(|q| q.agents.clone()).filter(|a| !a.is_empty());
    let agents = agents.unwrap_or_else(|| vec!["+18005550199".to_string()]);
    for (n, target) in agents.iter().enumerate() {
        let attempt = n as u32 + 1;
        let leg = format!("agent:{id}:{attempt}");
        rec.transfer(t, attempt, target, TransferStatus::Dialing, None, None);
        rec.push(t + 300, agent_joined(&leg, target));
        rec.transfer(t + 800, attempt, target, TransferStatus::Ringing, None, Some(&leg));
        if rng.chance(0.04) {
            let gone = t + rng.range(2_000, 15_000);
            rec.transfer(gone, attempt, target, TransferStatus::Abandoned, Some("caller hung up"), Some(&leg));
            rec.push(gone, agent_ended(&leg));
            return (rec.end(gone, "caller_hangup_during_transfer"), out);
        }
        if rng.chance(if attempt == 1 { 0.85 } else { 0.7 }) {
            let answered = t + rng.range(3_000, 15_000);
            rec.push(answered, DomainEvent::LegAnswered { role: Role::Agent, call_control_id: leg.clone() });
            rec.transfer(answered, attempt, target, TransferStatus::Answered, None, Some(&leg));
            let bridged = answered + rng.range(4_000, 7_000);
            rec.transfer(bridged, attempt, target, TransferStatus::Bridging, None, Some(&leg));
            let connected = bridged + rng.range(300, 900);
            rec.transfer(connected, attempt, target, TransferStatus::Connected, None, Some(&leg));
            out.transferred = 1;
            let agent = rng.pick(AGENTS).copied().unwrap_or("sam");
            let greeting = format!("hi this is {agent} from {} i can see what happened how can i help", decision.queue);
            rec.utterance(connected + 1_500, Speaker::Agent, &greeting, rng.range(3, 40));
            let answer = if decision.reason == Reason::BuyingSignal {
                "great i would like the premium plan please"
            } else {
                "finally a person thank you"
            };
            rec.utterance(connected + 6_000, Speaker::Caller, answer, rng.range(3, 40));
            let end = connected + rng.range(60_000, 420_000);
            rec.push(end, agent_ended(&leg));
            return (rec.end(end, "completed_with_agent"), out);
        }
        t += 20_000;
        rec.transfer(t, attempt, target, TransferStatus::AttemptFailed, Some("no answer"), Some(&leg));
        rec.push(t, agent_ended(&leg));
    }
    rec.transfer(
        t,
        agents.len() as u32,
        agents.last().map_or("", String::as_str),
        TransferStatus::Failed,
        Some("no agent answered"),
        None,
    );
    rec.push(t, DomainEvent::IvrSaid { text: "I'm sorry, nobody is available right now.".into() });
    (rec.end(t + rng.range(5_000, 30_000), "caller_hangup"), out)
}

fn agent_joined(leg: &str, target: &str) -> DomainEvent {
    DomainEvent::LegJoined {
        role: Role::Agent,
        call_control_id: leg.to_string(),
        call_leg_id: None,
        call_session_id: None,
        from: Some("+18005550100".into()),
        to: Some(target.to_string()),
    }
}

fn agent_ended(leg: &str) -> DomainEvent {
    DomainEvent::LegEnded {
        role: Role::Agent,
        call_control_id: leg.to_string(),
        cause: Some("normal_clearing".into()),
        source: Some("callee".into()),
    }
}

/// Start times of `options.calls` calls, oldest first: a uniform day, an hour
/// weighted like a contact centre's day (UTC), a uniform second.
fn start_times(options: &SyntheticOptions) -> Vec<DateTime<Utc>> {
    let mut rng = Rng::new(options.seed.rotate_left(17) ^ 0x5717_7135);
    let mut offsets: Vec<u64> = (0..options.calls)
        .map(|_| {
            let day = rng.range(0, u64::from(options.days.max(1)));
            let hour = weighted(&mut rng, HOUR_WEIGHTS.iter().enumerate().map(|(h, w)| (h as u64, *w))).unwrap_or(12);
            day * 86_400 + hour * 3600 + rng.range(0, 3600)
        })
        .collect();
    offsets.sort_unstable();
    offsets.into_iter().map(|s| options.start + Duration::seconds(s as i64)).collect()
}

/// Generates `options.calls` conversations into the store, in the order
/// they started (as a live store fills up).
pub async fn generate(
    store: &(impl Journal + ?Sized),
    options: &SyntheticOptions,
    scorer: &dyn Scorer,
    config: &Config,
    tick: &mut dyn FnMut(),
) -> Result<Generated, AnalyzeError> {
    let mut total = Generated::default();
    for (i, started) in start_times(options).into_iter().enumerate() {
        let i = i as u64;
        let (events, g) = conversation(i, started, options, scorer, config);
        total.calls += g.calls;
        total.decided += g.decided;
        total.transferred += g.transferred;
        if let Some(first) = events.first() {
            drop(store.commit(Transition::events(first.conversation_id.clone(), events)));
        }
        if i % 2000 == 1999 {
            // Keep the writer's queue (and memory) bounded.
            store.flush().await?;
        }
        tick();
    }
    store.flush().await?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::intel::LocalEngine;
    use crate::session::DomainEvent;

    #[test]
    fn calls_are_deterministic_and_in_time_order() {
        let config = Config::default();
        let engine = LocalEngine::default();
        let options = SyntheticOptions { calls: 200, ..SyntheticOptions::default() };
        let times = start_times(&options);
        assert_eq!(times, start_times(&options));
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.iter().all(|t| *t >= options.start && *t < options.start + Duration::days(28)));
        let t0 = options.start;
        for i in [0, 3, 9] {
            let x = conversation(i, t0, &options, &engine, &config);
            let y = conversation(i, t0, &SyntheticOptions { calls: 5, ..options.clone() }, &engine, &config);
            assert_eq!(x, y, "content depends on the seed and i only");
        }
        let other = SyntheticOptions { seed: 8, ..options.clone() };
        assert_ne!(conversation(0, t0, &options, &engine, &config).0, conversation(0, t0, &other, &engine, &config).0);
    }

    #[test]
    fn calls_look_like_calls() {
        let config = Config::default();
        let engine = LocalEngine::default();
        let options = SyntheticOptions::default();
        let mut personas_with_agents = 0;
        for i in 0..300 {
            let (events, g) = conversation(i, options.start, &options, &engine, &config);
            assert!(matches!(events.first().map(|e| &e.event), Some(DomainEvent::CallStarted { .. })));
            assert!(matches!(events.last().map(|e| &e.event), Some(DomainEvent::CallEnded { .. })));
            assert!(events.windows(2).all(|w| w[0].offset_ms <= w[1].offset_ms && w[0].n + 1 == w[1].n));
            assert!(events.iter().any(|e| matches!(e.event, DomainEvent::Utterance { .. })));
            personas_with_agents += g.transferred;
            assert!(g.transferred <= g.decided);
        }
        // Keypad callers alone reach agents whatever the engine and policy.
        assert!(personas_with_agents > 5, "{personas_with_agents}");
    }
}
