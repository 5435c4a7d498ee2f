//! What plays on a leg and what the carrier hears: the speak queue, gathers,
//! playback, recording, streaming and transcription.
//!
//! `speak` and `gather_using_speak` prompts form one queue per leg and play
//! one after another. A gather starts collecting when its prompt starts; a key
//! pressed during the prompt stops it. Transcripts are produced for speech on
//! every leg that transcribes it (see [`timing`](super::timing)).
//!
//! [`Media`] is one leg's state; the world (`world/media.rs`) sets its timers
//! and sends the webhooks its changes call for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ivrx_telnyx::commands::{PlaybackStart, TranscriptionStart};
use ivrx_telnyx::events::GatherStatus;
use ivrx_telnyx::spec;
use serde_json::{json, Value};

use super::gather::{GatherState, GatherStep};
use super::world::{Speech, Tick, VTime};

/// The media state of one leg.
#[derive(Debug, Default)]
pub(crate) struct Media {
    queue: VecDeque<MediaItem>,
    current: Option<Playing>,
    gather: Option<Box<GatherRun>>,
    playback: Option<Box<PlaybackRun>>,
    transcription: Option<Transcribing>,
    recording: Option<Recording>,
    streaming: Option<Box<str>>,
}

#[derive(Debug)]
enum MediaItem {
    Speak(Arc<str>),
    /// A gather's prompt. The first prompt of a `gather_using_speak` carries
    /// its gather, which starts with the prompt; retries carry none.
    Prompt {
        text: Arc<str>,
        gather: Option<Box<GatherState>>,
    },
}

#[derive(Debug)]
struct Playing {
    speech: Speech,
    prompt: bool,
}

#[derive(Debug)]
struct GatherRun {
    state: GatherState,
    /// Its prompt is playing (keys stop it; the timeout has not started).
    prompting: bool,
}

/// What the queue plays next.
#[derive(Debug)]
pub(crate) enum UpNext {
    /// Something plays already.
    Busy,
    /// The queue is empty.
    Empty,
    /// This text, a gather's prompt or not; a prompt that starts a gather carries it.
    Play { text: Arc<str>, prompt: bool, gather: Option<Box<GatherState>> },
}

/// What a hangup cut short.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CutShort {
    /// A `speak` was playing (it ends `call_hangup`).
    pub speaking: bool,
    /// A gather was collecting (it ends `call_hangup`).
    pub gathering: bool,
}

/// A playback in progress.
#[derive(Debug)]
pub(crate) struct PlaybackRun {
    media_url: Option<String>,
    media_name: Option<String>,
    overlay: bool,
}

impl PlaybackRun {
    /// The playback a `playback_start` asks for, and how many times it loops
    /// (`None`: until stopped).
    pub fn from_command(b: &PlaybackStart) -> (Self, Option<u64>) {
        let loops = match &b.loop_ {
            None | Some(Value::Null) => Some(1),
            Some(Value::Number(n)) => n.as_u64().map(|n| n.clamp(1, 1000)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("infinity") => None,
            Some(Value::String(s)) => Some(s.trim().parse::<u64>().unwrap_or(1).clamp(1, 1000)),
            Some(_) => Some(1),
        };
        let run = PlaybackRun {
            media_url: b.audio_url.clone(),
            media_name: b.media_name.clone(),
            overlay: b.overlay.unwrap_or(false),
        };
        (run, loops)
    }

    /// The fields of `call.playback.started` (no status) and `.ended`.
    pub fn fields(&self, status: Option<&str>) -> Value {
        let mut f = json!({ "overlay": self.overlay });
        if let Some(u) = &self.media_url {
            f["media_url"] = Value::from(u.as_str());
        }
        if let Some(n) = &self.media_name {
            f["media_name"] = Value::from(n.as_str());
        }
        if let Some(s) = status {
            f["status"] = Value::from(s);
        }
        f
    }
}

/// Transcription settings of a leg.
#[derive(Debug, Clone)]
pub(crate) struct Transcribing {
    /// Transcribe the far party of the leg.
    pub inbound: bool,
    /// Transcribe the other direction (IVR speech, the bridged party).
    pub outbound: bool,
    /// Send interim results.
    pub interim: bool,
    /// Speech that started before this is not transcribed.
    pub since: VTime,
}

impl Transcribing {
    /// Settings from a `transcription_start` body (new or legacy shape), or an
    /// `answer`'s `transcription_config`. Interim results come only from
    /// engines whose configuration has `interim_results`, and only when it is
    /// true (Telnyx's engine and Azure send finals only).
    pub(crate) fn from_command(b: &TranscriptionStart, at: VTime) -> Self {
        let tracks = b.transcription_tracks.as_deref().unwrap_or("inbound");
        let engine = b.transcription_engine.as_deref().unwrap_or(spec::DEFAULT_ENGINE);
        let has_interim = spec::engine_shapes(engine)
            .is_some_and(|shapes| shapes.iter().any(|s| spec::field(s, "interim_results").is_some()));
        let asked =
            b.transcription_engine_config.as_ref().and_then(|c| c.get("interim_results")).and_then(Value::as_bool);
        Self {
            inbound: matches!(tracks, "inbound" | "both"),
            outbound: matches!(tracks, "outbound" | "both"),
            interim: has_interim && b.interim_results.or(asked).unwrap_or(false),
            since: at,
        }
    }
}

/// A recording in progress (saved in both formats, whichever was asked for).
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    pub started: VTime,
    pub channels: String,
}

impl Media {
    /// True while IVR speech (a speak or a prompt) plays.
    pub fn speaking(&self) -> bool {
        self.current.is_some()
    }

    /// True while a gather collects keys.
    pub fn gathering(&self) -> bool {
        self.gather.is_some()
    }

    /// The line the IVR is saying now.
    pub fn current_seq(&self) -> Option<u32> {
        self.current.as_ref().map(|p| p.speech.seq)
    }

    // ----- the queue --------------------------------------------------------

    /// Queues text to speech; true when nothing plays (start the queue).
    pub fn queue_speak(&mut self, text: Arc<str>) -> bool {
        self.push(MediaItem::Speak(text))
    }

    /// Queues a prompt whose gather starts when the prompt does; true when
    /// nothing plays (start the queue).
    pub fn queue_prompt(&mut self, text: Arc<str>, gather: GatherState) -> bool {
        self.push(MediaItem::Prompt { text, gather: Some(Box::new(gather)) })
    }

    fn push(&mut self, item: MediaItem) -> bool {
        self.queue.push_back(item);
        self.current.is_none()
    }

    /// Takes the next item to play off the queue. A retry prompt whose gather
    /// is over is dropped; one whose gather runs marks it prompting again.
    pub fn up_next(&mut self) -> UpNext {
        loop {
            if self.current.is_some() {
                return UpNext::Busy;
            }
            let Some(item) = self.queue.pop_front() else { return UpNext::Empty };
            match item {
                MediaItem::Speak(text) => return UpNext::Play { text, prompt: false, gather: None },
                MediaItem::Prompt { text, gather: Some(g) } => {
                    return UpNext::Play { text, prompt: true, gather: Some(g) }
                }
                MediaItem::Prompt { text, gather: None } => {
                    if let Some(g) = self.gather.as_mut() {
                        g.prompting = true;
                        return UpNext::Play { text, prompt: true, gather: None };
                    }
                }
            }
        }
    }

    /// `speech` starts playing.
    pub fn play(&mut self, speech: Speech, prompt: bool) {
        self.current = Some(Playing { speech, prompt });
    }

    /// The line playing has been said to its end: the line, and whether it was a prompt.
    pub fn finish_playing(&mut self) -> Option<(Speech, bool)> {
        self.current.take().map(|p| (p.speech, p.prompt))
    }

    /// Stops a playing prompt early; false when no prompt plays.
    pub fn cut_prompt(&mut self) -> bool {
        if !self.current.as_ref().is_some_and(|p| p.prompt) {
            return false;
        }
        self.current = None;
        true
    }

    /// The leg hung up: the queue empties and what played stops.
    pub fn hang_up(&mut self) -> CutShort {
        self.queue.clear();
        let current = self.current.take();
        CutShort { speaking: current.is_some_and(|p| !p.prompt), gathering: self.gather.is_some() }
    }

    // ----- gathers ----------------------------------------------------------

    /// A gather starts (after the previous one ended).
    pub fn start_gather(&mut self, state: GatherState, prompting: bool) {
        self.gather = Some(Box::new(GatherRun { state, prompting }));
    }

    /// Interrupts the running gather, if any.
    pub fn interrupt_gather(&mut self, status: GatherStatus) -> Option<GatherStep> {
        self.gather.as_mut().map(|g| g.state.interrupt(status))
    }

    /// A gather's prompt ended: it starts waiting for keys; the first key's timeout.
    pub fn prompt_done(&mut self) -> Option<Duration> {
        self.gather.as_mut().map(|g| {
            g.prompting = false;
            g.state.spec.first_timeout
        })
    }

    /// A key reached the running gather: its step, and whether its prompt was playing.
    pub fn gather_key(&mut self, key: char) -> Option<(GatherStep, bool)> {
        let g = self.gather.as_mut()?;
        let was_prompting = std::mem::replace(&mut g.prompting, false);
        Some((g.state.on_digit(key), was_prompting))
    }

    /// A gather timeout ran out (the overall one, or the one for the next key).
    pub fn gather_timeout(&mut self, overall: bool) -> Option<GatherStep> {
        let g = self.gather.as_mut()?;
        Some(if overall { g.state.on_overall_timeout() } else { g.state.on_timeout() })
    }

    /// How long the running gather waits for the next key.
    pub fn inter_digit_timeout(&self) -> Option<Duration> {
        self.gather.as_ref().map(|g| g.state.spec.inter_digit_timeout)
    }

    /// The running gather asks again: its prompt plays next.
    pub fn retry(&mut self, prompt: String) {
        self.queue.push_front(MediaItem::Prompt { text: Arc::from(prompt), gather: None });
    }

    /// The running gather is over; true when its prompt was playing.
    pub fn end_gather(&mut self) -> bool {
        self.gather.take().is_some_and(|g| g.prompting)
    }

    // ----- playback, streaming, recording, transcription --------------------

    /// A playback starts.
    pub fn start_playback(&mut self, run: PlaybackRun) {
        self.playback = Some(Box::new(run));
    }

    /// The playback that was running, now stopped.
    pub fn stop_playback(&mut self) -> Option<Box<PlaybackRun>> {
        self.playback.take()
    }

    /// Streaming to `url` starts.
    pub fn start_streaming(&mut self, url: Box<str>) {
        self.streaming = Some(url);
    }

    /// The URL streaming went to, now stopped.
    pub fn stop_streaming(&mut self) -> Option<Box<str>> {
        self.streaming.take()
    }

    /// Recording starts, unless it runs already.
    pub fn start_recording(&mut self, r: Recording) {
        self.recording.get_or_insert(r);
    }

    /// The recording that ran, now stopped.
    pub fn stop_recording(&mut self) -> Option<Recording> {
        self.recording.take()
    }

    /// Transcription starts (or changes its settings).
    pub fn transcribe(&mut self, t: Transcribing) {
        self.transcription = Some(t);
    }

    /// Transcription stops.
    pub fn stop_transcription(&mut self) {
        self.transcription = None;
    }

    /// True when the leg sends this transcript: on the track it is heard on
    /// (`inbound` for the far party), finals always, interims when asked for.
    pub fn transcribes(&self, tick: &Tick, inbound: bool) -> bool {
        self.transcription.as_ref().is_some_and(|t| {
            t.since <= tick.start && (tick.is_final || t.interim) && if inbound { t.inbound } else { t.outbound }
        })
    }

    /// The leg ended: transcription and streaming stop; the recording to save.
    pub fn close(&mut self) -> Option<Recording> {
        self.transcription = None;
        self.streaming = None;
        self.recording.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gather::GatherSpec;

    fn prompt_gather(max_digits: usize) -> GatherState {
        GatherState::new(GatherSpec {
            valid_digits: "0123456789".into(),
            min_digits: 1,
            max_digits,
            terminating_digit: None,
            first_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(2),
            overall_timeout: None,
            max_tries: 2,
            prompt: Some("press one".into()),
            invalid_prompt: None,
        })
    }

    fn speech(seq: u32, text: &Arc<str>) -> Speech {
        Speech { seq, text: text.clone(), words: 2, start: VTime::ZERO }
    }

    #[test]
    fn the_queue_plays_one_item_at_a_time_and_a_prompt_brings_its_gather() {
        let mut m = Media::default();
        assert!(m.queue_speak(Arc::from("welcome")), "idle: start it");
        assert!(m.queue_prompt(Arc::from("press one"), prompt_gather(1)), "still idle until something plays");
        let UpNext::Play { text, prompt: false, gather: None } = m.up_next() else { panic!("the speak first") };
        m.play(speech(1, &text), false);
        assert!(m.speaking() && matches!(m.up_next(), UpNext::Busy));
        assert_eq!(m.finish_playing().map(|(s, p)| (s.seq, p)), Some((1, false)));
        let UpNext::Play { text, prompt: true, gather: Some(g) } = m.up_next() else { panic!("then the prompt") };
        m.start_gather(*g, true);
        m.play(speech(2, &text), true);
        assert!(m.gathering() && matches!(m.up_next(), UpNext::Busy));
        let (step, was_prompting) = m.gather_key('1').unwrap();
        assert!(was_prompting && matches!(step, GatherStep::End { .. }), "{step:?}");
        assert!(!m.end_gather(), "the key stopped the prompting");
        assert!(m.cut_prompt() && !m.speaking());
        assert!(matches!(m.up_next(), UpNext::Empty));
    }

    #[test]
    fn a_retry_prompt_plays_only_while_its_gather_runs() {
        let mut m = Media::default();
        m.start_gather(prompt_gather(1), false);
        m.retry("again".into());
        assert!(matches!(m.up_next(), UpNext::Play { prompt: true, gather: None, .. }));
        m.retry("again".into());
        assert!(m.end_gather(), "the retry marked the gather prompting");
        assert!(matches!(m.up_next(), UpNext::Empty), "the gather is over: its retry is dropped");
    }

    #[test]
    fn a_hangup_says_what_it_cut_short_and_keeps_the_recording_to_save() {
        let mut m = Media::default();
        m.queue_speak(Arc::from("hello"));
        m.play(speech(1, &Arc::from("hello")), false);
        m.start_gather(prompt_gather(2), false);
        m.start_recording(Recording { started: VTime::ZERO, channels: "single".into() });
        m.start_recording(Recording { started: VTime::from_secs(9), channels: "dual".into() });
        let cut = m.hang_up();
        assert!(cut.speaking && cut.gathering && !m.speaking());
        let r = m.close().expect("a recording");
        assert_eq!((r.started, r.channels.as_str()), (VTime::ZERO, "single"), "the first one runs on");
        assert!(m.close().is_none());
    }
}
