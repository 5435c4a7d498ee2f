//! The sandbox's timing and turn-taking model.
//!
//! All durations below are *virtual* (see [`SandboxClock`](super::SandboxClock)):
//! at `--time-scale 50` a 4 s reply timeout passes in 80 ms of real time.
//!
//! # Speech
//!
//! - Simulated people speak at [`words_per_sec`](TimingModel::words_per_sec)
//!   (2.5 words/s): an 8-word line lasts 3.2 s.
//! - While a line is spoken on a leg with transcription running, an interim
//!   `call.transcription` (`is_final: false`) is sent after every
//!   [`interim_every_words`](TimingModel::interim_every_words) words (2) with the
//!   words so far, and one final transcript with the whole line
//!   [`final_delay`](TimingModel::final_delay) (0.4 s) after the last word. The
//!   final's confidence is derived from the text ([`confidence`]), 0.80–0.98, so
//!   runs are reproducible.
//! - IVR speech (`speak`, the prompt of `gather_using_speak`) lasts as long as
//!   its words take at the same rate, at least
//!   [`min_ivr_speech`](TimingModel::min_ivr_speech) (0.6 s). SSML tags do not
//!   count as words.
//! - `playback_start` plays every audio file for
//!   [`audio_file`](TimingModel::audio_file) (5 s) per loop.
//!
//! # Ringing and answering
//!
//! - A simulated inbound call waits [`answer_deadline`](TimingModel::answer_deadline)
//!   (30 s) for the application's `answer`; then the caller gives up
//!   (`call.hangup`, `originator_cancel`).
//! - A dialled or transferred-to number behaves as configured
//!   ([`PartyBehavior`](super::PartyBehavior)): `answer` picks up after
//!   [`dial_answer`](TimingModel::dial_answer) (2 s) unless a delay is given;
//!   numbers nobody configured are agents that answer after
//!   [`agent_ring`](TimingModel::agent_ring) (3 s); `refuse` rejects after the
//!   same ring (`call_rejected`); `busy` answers `user_busy` after
//!   [`busy_after`](TimingModel::busy_after) (1 s); `no-answer` rings until the
//!   command's `timeout_secs` (default [`ring_timeout`](TimingModel::ring_timeout),
//!   30 s) and ends with `timeout`.
//!
//! # Turn-taking (what makes runs deterministic)
//!
//! A script's steps never race the application: each step waits for something
//! the sandbox itself simulates, so the same script against the same
//! application produces the same webhooks in the same order.
//!
//! 1. **Listen first.** Once the call is answered, a scripted caller waits
//!    until the IVR's first `speak` or prompt has *started and finished*, or
//!    [`first_prompt_wait`](TimingModel::first_prompt_wait) (5 s) if the IVR says
//!    nothing, before its first step.
//! 2. **One voice at a time.** A party starts a `say` only when nothing is
//!    audible to it: no IVR speech on its leg and, when bridged, no speech from
//!    the other party. Otherwise it waits for silence, then the turn gap.
//! 3. **Wait for a reply.** After each `say` (and each `press`), the party
//!    waits until the other side (the IVR on its leg, or the bridged party) has
//!    started *and* finished speaking, or until
//!    [`reply_timeout`](TimingModel::reply_timeout) (4 s) passes with no speech.
//!    A reply already under way when the party stops counts. Once the reply
//!    has ended the party takes [`turn_gap`](TimingModel::turn_gap) (0.5 s)
//!    before its next step, so the final transcript of what it heard (0.4 s)
//!    always arrives before it speaks, presses or hangs up. A transfer
//!    starting on the party's leg also ends the wait (the caller hears
//!    ringback).
//! 4. **Pressing keys.** A `press` waits until the IVR collects digits on the
//!    leg (a `gather` or `gather_using_speak` is running, at most
//!    [`reply_timeout`](TimingModel::reply_timeout)), then, after
//!    [`press_delay`](TimingModel::press_delay) (1 s, a person's reaction), sends
//!    the keys [`dtmf_interval`](TimingModel::dtmf_interval) (0.3 s) apart. A key
//!    pressed while a gather's prompt is still playing stops the prompt, as on
//!    Telnyx. Every key produces `call.dtmf.received`.
//! 5. **Pauses and hanging up.** `pause N` waits N virtual seconds; `hangup`
//!    ends the party's leg. At the end of its script a party stays on the line
//!    silently until the other side hangs up, for at most
//!    [`hold_cap`](TimingModel::hold_cap) (1 h).
//! 6. **Agents.** When a transferred-to (or bridged) party answers, the agent
//!    speaks first: its script starts at the bridge while the caller listens
//!    (rule 3, with [`first_prompt_wait`](TimingModel::first_prompt_wait)). From
//!    then on caller and agent take turns by rules 2–3, and each one's speech is
//!    transcribed on every leg where transcription is running: as `inbound` on
//!    the speaker's own leg, as `outbound` on the bridged leg (tracks `outbound`
//!    or `both`).

use std::time::Duration;

/// Every duration of the simulation, in virtual time. The defaults are the
/// documented model; tests may stretch them.
#[derive(Debug, Clone, PartialEq)]
pub struct TimingModel {
    /// Speaking rate of people and of the IVR's text to speech (2.5).
    pub words_per_sec: f64,
    /// Interim transcripts come after every this many words (2).
    pub interim_every_words: usize,
    /// The final transcript comes this long after the last word (0.4 s).
    pub final_delay: Duration,
    /// Shortest IVR speech (0.6 s).
    pub min_ivr_speech: Duration,
    /// Ring time of agents nobody configured, and of `refuse` (3 s).
    pub agent_ring: Duration,
    /// Ring time of `answer` without a delay (2 s).
    pub dial_answer: Duration,
    /// How soon a `busy` number answers busy (1 s).
    pub busy_after: Duration,
    /// How long a simulated inbound caller waits for `answer` (30 s).
    pub answer_deadline: Duration,
    /// How long a caller listens for the IVR's first prompt (5 s).
    pub first_prompt_wait: Duration,
    /// How long a party waits for a reply after speaking or pressing (4 s).
    pub reply_timeout: Duration,
    /// Pause between hearing the end of a reply and the next step (0.5 s).
    pub turn_gap: Duration,
    /// Reaction time before pressing keys once a gather is running (1 s).
    pub press_delay: Duration,
    /// Time between two keys of one `press` (0.3 s).
    pub dtmf_interval: Duration,
    /// Length of one loop of any audio file (5 s).
    pub audio_file: Duration,
    /// Longest a party stays on the line after its script ends (1 h).
    pub hold_cap: Duration,
    /// Ring timeout of dial and transfer when `timeout_secs` is not given (30 s).
    pub ring_timeout: Duration,
}

impl Default for TimingModel {
    fn default() -> Self {
        Self {
            words_per_sec: 2.5,
            interim_every_words: 2,
            final_delay: Duration::from_millis(400),
            min_ivr_speech: Duration::from_millis(600),
            agent_ring: Duration::from_secs(3),
            dial_answer: Duration::from_secs(2),
            busy_after: Duration::from_secs(1),
            answer_deadline: Duration::from_secs(30),
            first_prompt_wait: Duration::from_secs(5),
            reply_timeout: Duration::from_secs(4),
            turn_gap: Duration::from_millis(500),
            press_delay: Duration::from_secs(1),
            dtmf_interval: Duration::from_millis(300),
            audio_file: Duration::from_secs(5),
            hold_cap: Duration::from_secs(3600),
            ring_timeout: Duration::from_secs(30),
        }
    }
}

/// Seconds as a duration, clamped to `0..=1 day` (never panics).
pub(crate) fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(86_400.0))
    } else {
        Duration::ZERO
    }
}

impl TimingModel {
    fn rate(&self) -> f64 {
        if self.words_per_sec.is_finite() && self.words_per_sec > 0.0 {
            self.words_per_sec
        } else {
            2.5
        }
    }

    /// When the `k`-th word (1-based) of a line has been spoken, from its start.
    pub fn word_offset(&self, k: usize) -> Duration {
        secs(k as f64 / self.rate())
    }

    /// How long a person takes to say `words` words (at least one word's time).
    pub fn speech_duration(&self, words: usize) -> Duration {
        self.word_offset(words.max(1))
    }

    /// How long the IVR takes to say `words` words.
    pub fn ivr_speech_duration(&self, words: usize) -> Duration {
        self.word_offset(words).max(self.min_ivr_speech)
    }

    /// Word counts at which interim transcripts of a `words`-word line are sent
    /// (every [`interim_every_words`](Self::interim_every_words), before the end).
    pub fn interim_word_counts(&self, words: usize) -> impl Iterator<Item = usize> {
        let step = self.interim_every_words.max(1);
        (1..).map(move |i| i * step).take_while(move |&k| k < words)
    }
}

/// The number of words in a line.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The first `k` words of a line.
pub fn word_prefix(text: &str, k: usize) -> String {
    text.split_whitespace().take(k).collect::<Vec<_>>().join(" ")
}

/// The text a speech synthesiser would say: SSML tags removed when `ssml`.
pub fn spoken_text(payload: &str, ssml: bool) -> String {
    if !ssml {
        return payload.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    let mut out = String::with_capacity(payload.len());
    let mut in_tag = false;
    for c in payload.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The recogniser's confidence for a transcript: a fixed function of the text
/// (FNV-1a hash mapped to 0.80–0.98), so the same line always scores the same.
pub fn confidence(text: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let unit = (h % 10_000) as f64 / 9_999.0;
    ((0.80 + 0.18 * unit) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_takes_words_over_rate() {
        let t = TimingModel::default();
        assert_eq!(t.speech_duration(8), Duration::from_millis(3200));
        assert_eq!(t.speech_duration(0), Duration::from_millis(400));
        assert_eq!(t.ivr_speech_duration(1), Duration::from_millis(600));
        assert_eq!(t.ivr_speech_duration(10), Duration::from_secs(4));
        assert_eq!(t.word_offset(2), Duration::from_millis(800));
    }

    #[test]
    fn interims_every_two_words_before_the_end() {
        let t = TimingModel::default();
        assert_eq!(t.interim_word_counts(8).collect::<Vec<_>>(), vec![2, 4, 6]);
        assert_eq!(t.interim_word_counts(7).collect::<Vec<_>>(), vec![2, 4, 6]);
        assert_eq!(t.interim_word_counts(2).count(), 0);
        assert_eq!(t.interim_word_counts(1).count(), 0);
        assert_eq!(word_prefix("i would like to check", 4), "i would like to");
    }

    #[test]
    fn confidence_is_deterministic_and_in_range() {
        let a = confidence("i want to talk to a real person");
        assert_eq!(a, confidence("i want to talk to a real person"));
        for text in ["", "a", "hello there", "this is useless", &"x".repeat(500)] {
            let c = confidence(text);
            assert!((0.80..=0.98).contains(&c), "{text}: {c}");
        }
        assert_ne!(confidence("yes"), confidence("no"));
    }

    #[test]
    fn ssml_tags_are_not_words() {
        assert_eq!(spoken_text("<speak>Hello <break time=\"1s\"/>there</speak>", true), "Hello there");
        assert_eq!(spoken_text("  a   b ", false), "a b");
        assert_eq!(word_count("<not ssml> here"), 3);
    }

    #[test]
    fn secs_never_panics() {
        assert_eq!(secs(-1.0), Duration::ZERO);
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(1e300), Duration::from_secs(86_400));
    }
}
