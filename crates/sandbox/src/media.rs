//! What plays on a leg and what the carrier hears: the speak queue, gathers,
//! playback, recording, streaming and transcription.
//!
//! `speak` and `gather_using_speak` prompts form one queue per leg and play
//! one after another. A gather starts collecting when its prompt starts; a key
//! pressed during the prompt stops it. Transcripts are produced for speech on
//! every leg that transcribes it (see [`timing`](super::timing)).

use std::collections::VecDeque;
use std::sync::Arc;

use ivrx_telnyx::commands::{Gather, GatherUsingSpeak, PlaybackStart, RecordStart, TranscriptionStart};
use ivrx_telnyx::events::GatherStatus;
use serde_json::{json, Value};

use super::gather::{GatherSpec, GatherState, GatherStep};
use super::ids;
use super::timing::{confidence, spoken_text, word_count, word_prefix};
use super::world::{Slot, Source, Speech, Tick, VTime, World};

/// The media state of one leg.
#[derive(Debug, Default)]
pub(crate) struct Media {
    queue: VecDeque<MediaItem>,
    current: Option<Playing>,
    gather: Option<Box<GatherRun>>,
    playback: Option<Box<PlaybackRun>>,
    pub transcription: Option<Transcribing>,
    pub recording: Option<Recording>,
    pub streaming: Option<Box<str>>,
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

#[derive(Debug)]
struct PlaybackRun {
    media_url: Option<String>,
    media_name: Option<String>,
    overlay: bool,
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

/// A recording in progress (saved in both formats, whichever was asked for).
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    started: VTime,
    channels: String,
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

    fn current_seq(&self) -> Option<u32> {
        self.current.as_ref().map(|p| p.speech.seq)
    }
}

impl World {
    fn media(&mut self, id: u64) -> Option<&mut Media> {
        self.legs.get_mut(&id).map(|l| &mut l.media)
    }

    pub(crate) fn next_speech(&mut self, id: u64, text: Arc<str>, at: VTime) -> Option<Speech> {
        let leg = self.legs.get_mut(&id)?;
        leg.speech_seq += 1;
        Some(Speech { seq: leg.speech_seq, words: word_count(&text), text, start: at })
    }

    /// Queues text to speech (`speak`).
    pub(crate) fn speak(&mut self, id: u64, at: VTime, payload: &str, ssml: bool) {
        let text: Arc<str> = Arc::from(spoken_text(payload, ssml));
        self.enqueue(id, at, MediaItem::Speak(text));
    }

    /// Queues a prompt whose gather starts when the prompt does.
    pub(crate) fn gather_using_speak(&mut self, id: u64, at: VTime, b: &GatherUsingSpeak) {
        let spec = GatherSpec::from_gather_using_speak(b);
        let text: Arc<str> = Arc::from(spec.prompt.clone().unwrap_or_default());
        let gather = Some(Box::new(GatherState::new(spec)));
        self.enqueue(id, at, MediaItem::Prompt { text, gather });
    }

    /// Starts a gather without a prompt (`gather`): it collects at once.
    pub(crate) fn gather(&mut self, id: u64, at: VTime, b: &Gather) {
        let spec = GatherSpec::from_gather(b);
        let first = spec.first_timeout;
        let overall = spec.overall_timeout;
        self.install_gather(id, at, GatherState::new(spec), false);
        self.set_timer(id, Slot::Gather, at.saturating_add(first));
        if let Some(o) = overall {
            self.set_timer(id, Slot::GatherOverall, at.saturating_add(o));
        }
        self.party_poll(id, at);
    }

    /// `gather_stop`: the running gather ends `cancelled`.
    pub(crate) fn stop_gather(&mut self, id: u64, at: VTime) {
        self.interrupt_gather(id, at, GatherStatus::Cancelled);
    }

    fn install_gather(&mut self, id: u64, at: VTime, state: GatherState, prompting: bool) {
        self.interrupt_gather(id, at, GatherStatus::Cancelled);
        self.cancel_timer(id, Slot::Gather);
        self.cancel_timer(id, Slot::GatherOverall);
        if let Some(m) = self.media(id) {
            m.gather = Some(Box::new(GatherRun { state, prompting }));
        }
    }

    fn interrupt_gather(&mut self, id: u64, at: VTime, status: GatherStatus) {
        let step = match self.media(id).and_then(|m| m.gather.as_mut()) {
            Some(g) => g.state.interrupt(status),
            None => return,
        };
        self.apply_gather_step(id, at, step);
    }

    fn enqueue(&mut self, id: u64, at: VTime, item: MediaItem) {
        let Some(m) = self.media(id) else { return };
        m.queue.push_back(item);
        if m.current.is_none() {
            self.play_next(id, at);
        }
    }

    /// Starts the next queued item, if nothing plays.
    fn play_next(&mut self, id: u64, at: VTime) {
        loop {
            let Some(m) = self.media(id) else { return };
            if m.current.is_some() {
                return;
            }
            let Some(item) = m.queue.pop_front() else {
                self.party_poll(id, at);
                return;
            };
            let (text, prompt) = match item {
                MediaItem::Speak(text) => (text, false),
                MediaItem::Prompt { text, gather: Some(g) } => {
                    self.install_gather(id, at, *g, true);
                    (text, true)
                }
                MediaItem::Prompt { text, gather: None } => match self.media(id).and_then(|m| m.gather.as_mut()) {
                    Some(g) => {
                        g.prompting = true;
                        (text, true)
                    }
                    // The gather this retry belonged to is over.
                    None => continue,
                },
            };
            let Some(speech) = self.next_speech(id, text, at) else { return };
            let duration = self.cfg.timing.ivr_speech_duration(speech.words);
            self.schedule_interims(id, Source::Ivr, &speech);
            if let Some(m) = self.media(id) {
                m.current = Some(Playing { speech, prompt });
            }
            if !prompt {
                self.emit(id, at, "call.speak.started", false, json!({}));
            }
            self.set_timer(id, Slot::Media, at.saturating_add(duration));
            self.party_poll(id, at);
            return;
        }
    }

    /// The current speech finished playing.
    pub(crate) fn media_due(&mut self, id: u64, at: VTime) {
        let Some(playing) = self.media(id).and_then(|m| m.current.take()) else { return };
        self.schedule_final(id, Source::Ivr, &playing.speech, at);
        if playing.prompt {
            let first = self.media(id).and_then(|m| m.gather.as_mut()).map(|g| {
                g.prompting = false;
                g.state.spec.first_timeout
            });
            if let Some(first) = first {
                self.set_timer(id, Slot::Gather, at.saturating_add(first));
            }
        } else {
            self.emit(id, at, "call.speak.ended", false, json!({ "status": "completed" }));
        }
        self.play_next(id, at);
        self.party_poll(id, at);
    }

    /// Stops a playing prompt early (a key was pressed): no transcript, no event.
    fn cut_prompt(&mut self, id: u64, at: VTime) {
        let Some(m) = self.media(id) else { return };
        if !m.current.as_ref().is_some_and(|p| p.prompt) {
            return;
        }
        m.current = None;
        self.cancel_timer(id, Slot::Media);
        self.play_next(id, at);
        self.party_poll(id, at);
    }

    /// A DTMF key reached the leg (after `call.dtmf.received`).
    pub(crate) fn gather_key(&mut self, id: u64, at: VTime, key: char) {
        let Some(g) = self.media(id).and_then(|m| m.gather.as_mut()) else { return };
        let was_prompting = std::mem::replace(&mut g.prompting, false);
        let step = g.state.on_digit(key);
        // The gather's outcome first (gather.ended before anything queued
        // behind the prompt starts), then the prompt stops.
        self.apply_gather_step(id, at, step);
        if was_prompting {
            self.cut_prompt(id, at);
        }
    }

    /// A gather timeout ran out.
    pub(crate) fn gather_due(&mut self, id: u64, at: VTime, overall: bool) {
        let step = match self.media(id).and_then(|m| m.gather.as_mut()) {
            Some(g) if overall => g.state.on_overall_timeout(),
            Some(g) => g.state.on_timeout(),
            None => return,
        };
        self.apply_gather_step(id, at, step);
    }

    fn apply_gather_step(&mut self, id: u64, at: VTime, step: GatherStep) {
        match step {
            GatherStep::Continue => {
                let wait = self.media(id).and_then(|m| m.gather.as_ref()).map(|g| g.state.spec.inter_digit_timeout);
                if let Some(wait) = wait {
                    self.set_timer(id, Slot::Gather, at.saturating_add(wait));
                }
            }
            GatherStep::Retry { prompt } => {
                self.cancel_timer(id, Slot::Gather);
                if let Some(m) = self.media(id) {
                    m.queue.push_front(MediaItem::Prompt { text: Arc::from(prompt), gather: None });
                }
                self.play_next(id, at);
            }
            GatherStep::End { status, digits } => {
                let prompting = self.media(id).and_then(|m| m.gather.take()).is_some_and(|g| g.prompting);
                self.cancel_timer(id, Slot::Gather);
                self.cancel_timer(id, Slot::GatherOverall);
                if prompting {
                    self.cut_prompt(id, at);
                }
                self.emit(id, at, "call.gather.ended", true, json!({ "digits": digits, "status": status.as_str() }));
                self.party_poll(id, at);
            }
        }
    }

    /// Everything that plays on a leg ends because the leg hangs up.
    pub(crate) fn end_media_on_hangup(&mut self, id: u64, at: VTime) {
        let Some(m) = self.media(id) else { return };
        m.queue.clear();
        let current = m.current.take();
        let gather = m.gather.is_some();
        for slot in [Slot::Media, Slot::Gather, Slot::GatherOverall] {
            self.cancel_timer(id, slot);
        }
        if current.as_ref().is_some_and(|p| !p.prompt) {
            self.emit(id, at, "call.speak.ended", false, json!({ "status": "call_hangup" }));
        }
        if gather {
            self.interrupt_gather(id, at, GatherStatus::CallHangup);
        }
        self.stop_playback(id, at, "call_hangup");
    }

    // ----- playback ---------------------------------------------------------

    /// `playback_start`: `call.playback.started`, and `call.playback.ended`
    /// after the loops (never for `"infinity"` until stopped).
    pub(crate) fn start_playback(&mut self, id: u64, at: VTime, b: &PlaybackStart) {
        self.stop_playback(id, at, "cancelled");
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
        let fields = playback_fields(&run, None);
        if let Some(m) = self.media(id) {
            m.playback = Some(Box::new(run));
        }
        self.emit(id, at, "call.playback.started", false, fields);
        match loops {
            Some(n) => {
                let length = self.cfg.timing.audio_file.saturating_mul(u32::try_from(n).unwrap_or(1));
                self.set_timer(id, Slot::Playback, at.saturating_add(length));
            }
            None => self.cancel_timer(id, Slot::Playback),
        }
    }

    /// Ends the running playback with `status`, if any.
    pub(crate) fn stop_playback(&mut self, id: u64, at: VTime, status: &str) {
        let Some(run) = self.media(id).and_then(|m| m.playback.take()) else { return };
        self.cancel_timer(id, Slot::Playback);
        self.emit(id, at, "call.playback.ended", false, playback_fields(&run, Some(status)));
    }

    pub(crate) fn playback_due(&mut self, id: u64, at: VTime) {
        self.stop_playback(id, at, "completed");
    }

    // ----- streaming and recording -----------------------------------------

    pub(crate) fn start_streaming(&mut self, id: u64, at: VTime, url: String) {
        if let Some(m) = self.media(id) {
            m.streaming = Some(url.clone().into());
        }
        self.emit(id, at, "streaming.started", false, json!({ "stream_url": url }));
    }

    pub(crate) fn stop_streaming(&mut self, id: u64, at: VTime) {
        if let Some(url) = self.media(id).and_then(|m| m.streaming.take()) {
            self.emit(id, at, "streaming.stopped", false, json!({ "stream_url": &*url }));
        }
    }

    pub(crate) fn start_recording(&mut self, id: u64, at: VTime, b: &RecordStart) {
        let r = Recording { started: at, channels: b.channels.clone().unwrap_or_else(|| "single".into()) };
        if let Some(m) = self.media(id) {
            m.recording.get_or_insert(r);
        }
    }

    pub(crate) fn stop_recording(&mut self, id: u64, at: VTime) {
        if let Some(r) = self.media(id).and_then(|m| m.recording.take()) {
            self.emit_recording_saved(id, at, &r);
        }
    }

    /// `call.recording.saved` in Telnyx's shape: the leg and session ids (no
    /// `call_control_id`: a recording outlives its call), the state, and where
    /// to download it (both formats, valid 10 minutes).
    pub(crate) fn emit_recording_saved(&mut self, id: u64, at: VTime, r: &Recording) {
        let Some(leg) = self.legs.get(&id) else { return };
        let rec = ids::uuid();
        let base = self.cfg.recording_base.trim_end_matches('/').to_string();
        let payload = json!({
            "call_leg_id": &*leg.leg_uuid,
            "call_session_id": &*leg.session_uuid,
            "connection_id": self.cfg.connection_id,
            "client_state": leg.client_state.as_deref(),
            "channels": r.channels,
            "recording_urls": { "mp3": format!("{base}/{rec}.mp3"), "wav": format!("{base}/{rec}.wav") },
            "recording_started_at": self.time(r.started),
            "recording_ended_at": self.time(at),
        });
        let (session, ccid, url) = (leg.session, leg.ccid.clone(), leg.url.clone());
        self.push_emitted(session, ccid, url, "call.recording.saved", at, payload);
    }

    // ----- transcription ----------------------------------------------------

    pub(crate) fn start_transcription(&mut self, id: u64, at: VTime, b: &TranscriptionStart) {
        let t = Transcribing::from_command(b, at);
        if let Some(m) = self.media(id) {
            m.transcription = Some(t);
        }
    }

    /// Interim transcripts of a line, due as its words are spoken.
    pub(crate) fn schedule_interims(&mut self, id: u64, source: Source, speech: &Speech) {
        let counts: Vec<usize> = self.cfg.timing.interim_word_counts(speech.words).collect();
        for k in counts {
            let at = speech.start.saturating_add(self.cfg.timing.word_offset(k));
            let tick = Tick {
                source,
                seq: speech.seq,
                text: speech.text.clone(),
                words: k,
                is_final: false,
                start: speech.start,
            };
            self.push_tick(id, at, tick);
        }
    }

    /// The final transcript of a line that was spoken to its end.
    pub(crate) fn schedule_final(&mut self, id: u64, source: Source, speech: &Speech, ended: VTime) {
        let tick = Tick {
            source,
            seq: speech.seq,
            text: speech.text.clone(),
            words: speech.words,
            is_final: true,
            start: speech.start,
        };
        self.push_tick(id, ended.saturating_add(self.cfg.timing.final_delay), tick);
    }

    /// Sends a due transcript to every leg that transcribes the speech.
    pub(crate) fn transcript_due(&mut self, id: u64, at: VTime, tick: Tick) {
        let Some(leg) = self.legs.get(&id) else { return };
        if !leg.alive() {
            return;
        }
        if !tick.is_final {
            let current = match tick.source {
                Source::Ivr => leg.media.current_seq(),
                Source::Party => leg.party.as_ref().and_then(|p| p.speech_seq()),
            };
            if current != Some(tick.seq) {
                return;
            }
        }
        let mut targets = Vec::with_capacity(2);
        match tick.source {
            Source::Ivr => targets.push((id, false)),
            Source::Party => {
                targets.push((id, true));
                targets.extend(self.hearers_of(id).into_iter().map(|peer| (peer, false)));
            }
        }
        if tick.is_final {
            self.note_heard(id, at, &tick);
        }
        let transcript = if tick.is_final { tick.text.to_string() } else { word_prefix(&tick.text, tick.words) };
        let conf = confidence(&transcript);
        for (target, inbound) in targets {
            let wanted =
                self.legs.get(&target).filter(|l| l.alive()).and_then(|l| l.media.transcription.as_ref()).is_some_and(
                    |t| {
                        t.since <= tick.start
                            && (tick.is_final || t.interim)
                            && if inbound { t.inbound } else { t.outbound }
                    },
                );
            if wanted {
                self.emit(
                    target,
                    at,
                    "call.transcription",
                    false,
                    json!({ "transcription_data": {
                        "transcript": transcript,
                        "confidence": conf,
                        "is_final": tick.is_final,
                        "transcription_track": if inbound { "inbound" } else { "outbound" },
                    }}),
                );
            }
        }
    }
}

fn playback_fields(run: &PlaybackRun, status: Option<&str>) -> Value {
    let mut f = json!({ "overlay": run.overlay });
    if let Some(u) = &run.media_url {
        f["media_url"] = Value::from(u.as_str());
    }
    if let Some(n) = &run.media_name {
        f["media_name"] = Value::from(n.as_str());
    }
    if let Some(s) = status {
        f["status"] = Value::from(s);
    }
    f
}
