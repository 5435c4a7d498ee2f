//! How a conversation looks in a terminal: one line per utterance with time,
//! speaker, a coloured sentiment bar and the text; a running trend of the
//! smoothed level; the transfer moment highlighted; a summary at the end.
//! A pure renderer (events in, lines out), shared by `watch` and `dial`.

use console::Style;

use crate::session::{DomainEvent, Recorded, Speaker, TransferStatus};

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Renders a conversation's events as lines of text.
pub struct ConversationView {
    color: bool,
    levels: Vec<f64>,
    pending: std::collections::BTreeMap<u32, (u64, Speaker, String)>,
    caller_scores: Vec<f64>,
    agent_utterances: u32,
    decision_ms: Option<u64>,
    decision: Option<String>,
    connected_ms: Option<u64>,
    transfer_status: Option<TransferStatus>,
    ended: bool,
}

/// `+m:ss` from milliseconds.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("+{}:{:02}", s / 60, s % 60)
}

/// A sparkline of values in -1..1.
pub fn sparkline(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| {
            let i = (((v.clamp(-1.0, 1.0) + 1.0) / 2.0) * 7.0).round() as usize;
            SPARKS[i.min(7)]
        })
        .collect()
}

/// Cells on each side of a [`bar`]'s centre line.
const BAR_HALF: usize = 5;

/// A bar for a score in -1..1 that grows from a centre line, leftwards when
/// negative and rightwards when positive, so the sign reads without colour:
/// `·████│·····` is about -0.8, `·····│███··` about +0.6.
pub fn bar(score: f64) -> String {
    let n = (score.abs().min(1.0) * BAR_HALF as f64).round() as usize;
    let (left, right) = if score < 0.0 { (n, 0) } else { (0, n) };
    format!("{}{}│{}{}", "·".repeat(BAR_HALF - left), "█".repeat(left), "█".repeat(right), "·".repeat(BAR_HALF - right))
}

impl ConversationView {
    /// A view; `color` adds ANSI styles.
    pub fn new(color: bool) -> Self {
        Self {
            color,
            levels: Vec::new(),
            pending: Default::default(),
            caller_scores: Vec::new(),
            agent_utterances: 0,
            decision_ms: None,
            decision: None,
            connected_ms: None,
            transfer_status: None,
            ended: false,
        }
    }

    fn style(&self, s: Style) -> Style {
        s.force_styling(self.color)
    }

    fn speaker(&self, sp: Speaker) -> String {
        let name = format!("{:<6}", sp.as_str());
        let st = match sp {
            Speaker::Caller => Style::new().cyan().bold(),
            Speaker::Agent => Style::new().magenta().bold(),
            Speaker::Ivr => Style::new().dim(),
        };
        self.style(st).apply_to(name).to_string()
    }

    fn scored(&self, score: f64) -> String {
        let st = if score <= crate::intel::NEGATIVE_BELOW {
            Style::new().red()
        } else if score >= crate::intel::POSITIVE_ABOVE {
            Style::new().green()
        } else {
            Style::new().dim()
        };
        self.style(st).apply_to(format!("{score:+.2} {}", bar(score))).to_string()
    }

    /// True once `call_ended` was seen.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The lines for one event (often none).
    pub fn push(&mut self, r: &Recorded) -> Vec<String> {
        let t = clock(r.offset_ms);
        let mut out = Vec::new();
        match &r.event {
            DomainEvent::CallStarted { from, to, .. } => out.push(format!(
                "{} call {} from {} to {}",
                self.style(Style::new().bold()).apply_to("●"),
                r.conversation_id,
                from.as_deref().unwrap_or("?"),
                to.as_deref().unwrap_or("?")
            )),
            DomainEvent::IvrSaid { text } => out.push(format!(
                "{t} {}              {}",
                self.speaker(Speaker::Ivr),
                self.style(Style::new().dim()).apply_to(text)
            )),
            DomainEvent::Dtmf { digits, choice } => out.push(format!(
                "{t} {}  pressed {digits}{}",
                self.speaker(Speaker::Caller),
                choice.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
            )),
            DomainEvent::Utterance { seq, speaker, text, .. } => {
                self.pending.insert(*seq, (r.offset_ms, *speaker, text.clone()));
            }
            DomainEvent::Scored { seq, speaker, score, trackers, policy, .. } => {
                let (off, sp, text) = self.pending.remove(seq).unwrap_or((r.offset_ms, *speaker, String::new()));
                let mut line = format!("{} {}  {}  {}", clock(off), self.speaker(sp), self.scored(*score), text);
                if !trackers.is_empty() {
                    let mut names: Vec<&str> = trackers.iter().map(|h| h.tracker.as_str()).collect();
                    names.dedup();
                    let tags: Vec<String> = names.iter().map(|n| format!("#{n}")).collect();
                    line.push_str(&format!("  {}", self.style(Style::new().yellow()).apply_to(tags.join(" "))));
                }
                if sp == Speaker::Caller {
                    self.caller_scores.push(*score);
                    if let Some(p) = policy {
                        self.levels.push(p.level);
                        let recent = &self.levels[self.levels.len().saturating_sub(16)..];
                        line.push_str(&format!(
                            "  {}",
                            self.style(Style::new().dim()).apply_to(format!(
                                "trend {} {:+.2}",
                                sparkline(recent),
                                p.level
                            ))
                        ));
                    }
                } else if sp == Speaker::Agent {
                    self.agent_utterances += 1;
                }
                out.push(line);
            }
            DomainEvent::Decision { decision, source } => {
                self.decision_ms = Some(r.offset_ms);
                self.decision = Some(format!("{} ({})", decision.queue, decision.reason.as_str()));
                let head = format!(">>> TRANSFER to {} at {} — {}", decision.queue, t, decision.reason.describe());
                out.push(self.style(Style::new().red().bold().reverse()).apply_to(head).to_string());
                if decision.trigger_index > 0 {
                    let mut l = format!(
                        "    trigger: caller utterance {} \"{}\"",
                        decision.trigger_index, decision.trigger_text
                    );
                    if let Some(p) = &decision.trigger_phrase {
                        l.push_str(&format!("  phrase \"{p}\""));
                    }
                    out.push(l);
                } else {
                    let src = serde_json::to_value(source)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    out.push(format!("    requested via {src}"));
                }
                let n = &decision.numbers;
                let mut l = format!(
                    "    numbers: score {:+.2}  level {:+.2}  drop {:.2}  consecutive negatives {}",
                    n.score, n.level, n.drop, n.consecutive_negatives
                );
                // The escalation signals, where they had something to say.
                if n.repeat > 0.0 {
                    l.push_str(&format!("  repeat {:.2}", n.repeat));
                }
                if n.rise > 0.0 {
                    l.push_str(&format!("  rise {:.2}", n.rise));
                }
                out.push(l);
            }
            DomainEvent::Transfer { status, target, detail, attempt, .. } => {
                self.transfer_status = Some(*status);
                let mut l = format!("    transfer: {} {target} (attempt {attempt})", status.as_str());
                if let Some(d) = detail {
                    l.push_str(&format!(" — {d}"));
                }
                if *status == TransferStatus::Connected {
                    self.connected_ms = Some(r.offset_ms);
                    if let Some(d) = self.decision_ms {
                        l.push_str(&format!(
                            ", {:.1} s after the decision",
                            (r.offset_ms.saturating_sub(d)) as f64 / 1000.0
                        ));
                    }
                }
                let st = match status {
                    TransferStatus::Connected => Style::new().green().bold(),
                    TransferStatus::Failed | TransferStatus::Abandoned => Style::new().red(),
                    _ => Style::new(),
                };
                out.push(self.style(st).apply_to(l).to_string());
            }
            DomainEvent::CommandFailed { action, error, call_gone: false, .. } => out.push(
                self.style(Style::new().yellow()).apply_to(format!("    ! {action} failed: {error}")).to_string(),
            ),
            DomainEvent::CallEnded { reason } => {
                self.ended = true;
                for (_, (off, sp, text)) in std::mem::take(&mut self.pending) {
                    out.push(format!("{} {}  {}", clock(off), self.speaker(sp), text));
                }
                out.push(format!("--- call ended at {t} ({reason})"));
                out.extend(self.summary());
            }
            _ => {}
        }
        out
    }

    /// The closing summary.
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        let s = &self.caller_scores;
        if s.is_empty() {
            out.push("    no caller utterances".into());
        } else {
            let min = s.iter().cloned().fold(f64::INFINITY, f64::min);
            let mean = s.iter().sum::<f64>() / s.len() as f64;
            out.push(format!(
                "    utterances: {} caller, {} agent   sentiment min {min:+.2} mean {mean:+.2} final {:+.2}",
                s.len(),
                self.agent_utterances,
                s[s.len() - 1]
            ));
        }
        match (&self.decision, self.decision_ms) {
            (Some(d), Some(ms)) => {
                let mut l = format!("    transfer to {d} decided at {:.1} s", ms as f64 / 1000.0);
                match (self.transfer_status, self.connected_ms) {
                    (_, Some(c)) => l.push_str(&format!("; agent connected at {:.1} s", c as f64 / 1000.0)),
                    (Some(st), None) => l.push_str(&format!("; {}", st.as_str())),
                    _ => {}
                }
                out.push(l);
            }
            _ => out.push("    not transferred".into()),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::{Label, TrackerHit};
    use crate::policy::{Decision, PolicySnapshot, Reason};
    use crate::session::DecisionSource;
    use ivrx_testkit::conversation::{asked_for_human, call_started, caller_scored};

    fn rec(n: u64, ms: u64, event: DomainEvent) -> Recorded {
        Recorded { conversation_id: "c1".into(), n, at: chrono::Utc::now(), offset_ms: ms, event }
    }

    #[test]
    fn sparkline_and_bar_cover_the_range() {
        assert_eq!(sparkline(&[-1.0, 0.0, 1.0, 5.0]), "▁▅██");
        assert_eq!(bar(-0.5), "··███│·····");
        assert_eq!(bar(-0.89), "·████│·····");
        assert_eq!(bar(0.62), "·····│███··");
        assert_eq!(bar(0.0), "·····│·····");
        assert_eq!(bar(-3.0), "█████│·····");
        assert_eq!(clock(75_500), "+1:15");
    }

    #[test]
    fn a_conversation_reads_like_a_story() {
        let mut v = ConversationView::new(false);
        let mut lines = Vec::new();
        let snap = |level| Some(PolicySnapshot { level, ..Default::default() });
        for r in [
            rec(1, 0, call_started()),
            rec(
                2,
                4000,
                DomainEvent::Utterance {
                    seq: 1,
                    speaker: Speaker::Caller,
                    text: "my internet is down".into(),
                    confidence: None,
                    caller_index: Some(1),
                },
            ),
            rec(3, 4000, caller_scored(1, -0.4, Label::Negative, vec![], snap(-0.4))),
            rec(
                4,
                9000,
                DomainEvent::Utterance {
                    seq: 2,
                    speaker: Speaker::Caller,
                    text: "get me a real person".into(),
                    confidence: None,
                    caller_index: Some(2),
                },
            ),
            rec(
                5,
                9000,
                caller_scored(
                    2,
                    -0.2,
                    Label::Neutral,
                    vec![TrackerHit::new("asks_for_human", "real person")],
                    snap(-0.3),
                ),
            ),
            rec(
                6,
                9000,
                DomainEvent::Decision {
                    source: DecisionSource::Policy,
                    decision: asked_for_human("get me a real person"),
                },
            ),
            rec(
                7,
                21000,
                DomainEvent::Transfer {
                    attempt: 1,
                    queue: "support".into(),
                    target: "+1201".into(),
                    mode: crate::config::TransferMode::Warm,
                    status: TransferStatus::Connected,
                    detail: None,
                    agent_call_control_id: None,
                },
            ),
            rec(8, 60000, DomainEvent::CallEnded { reason: "completed_with_agent".into() }),
        ] {
            lines.extend(v.push(&r));
        }
        let text = lines.join("\n");
        assert!(text.contains("+0:04 caller  -0.40 ···██│·····  my internet is down  trend ▃ -0.40"), "{text}");
        assert!(text.contains("#asks_for_human"));
        assert!(text.contains(">>> TRANSFER to support at +0:09 — the caller asked for a person"));
        assert!(text.contains("trigger: caller utterance 2 \"get me a real person\"  phrase \"real person\""));
        assert!(text.contains("connected +1201 (attempt 1), 12.0 s after the decision"));
        assert!(text.contains("--- call ended at +1:00 (completed_with_agent)"));
        assert!(text.contains("sentiment min -0.40 mean -0.30 final -0.20"));
        assert!(text.contains("transfer to support (asked_for_human) decided at 9.0 s; agent connected at 21.0 s"));
        assert!(v.is_ended());
        assert!(!text.contains('\u{1b}'), "no colour when asked for none");
        assert!(text.contains("consecutive negatives 0\n"), "no signals shown when they said nothing: {text}");
    }

    #[test]
    fn the_numbers_show_the_signals_that_spoke() {
        let mut v = ConversationView::new(false);
        let decision = |numbers| {
            rec(
                1,
                1000,
                DomainEvent::Decision {
                    source: DecisionSource::Policy,
                    decision: Decision {
                        reason: Reason::Repetition,
                        queue: "support".into(),
                        trigger_index: 3,
                        trigger_text: "i said my bill is wrong".into(),
                        trigger_phrase: None,
                        tracker: None,
                        numbers,
                    },
                },
            )
        };
        let lines = v.push(&decision(PolicySnapshot { repeat: 0.8, rise: 0.45, ..Default::default() }));
        let text = lines.join("\n");
        assert!(text.contains("consecutive negatives 0  repeat 0.80  rise 0.45"), "{text}");
    }
}
