//! How the world runs each leg's [`Media`]: it sets the timers and sends the
//! webhooks the media's changes call for, and lets the party on the leg react.

use std::sync::Arc;

use ivrx_telnyx::commands::{Gather, GatherUsingSpeak, PlaybackStart, RecordStart, TranscriptionStart};
use ivrx_telnyx::events::{EventType, GatherStatus};
use serde_json::json;

use super::{Slot, Source, Speech, Tick, VTime, World};
use crate::gather::{GatherSpec, GatherState, GatherStep};
use crate::ids;
use crate::media::{CutShort, Media, PlaybackRun, Recording, Transcribing, UpNext};
use crate::timing::{confidence, spoken_text, word_count, word_prefix};

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
        if self.media(id).is_some_and(|m| m.queue_speak(text)) {
            self.play_next(id, at);
        }
    }

    /// Queues a prompt whose gather starts when the prompt does.
    pub(crate) fn gather_using_speak(&mut self, id: u64, at: VTime, b: &GatherUsingSpeak) {
        let spec = GatherSpec::from_gather_using_speak(b);
        let text: Arc<str> = Arc::from(spec.prompt.clone().unwrap_or_default());
        if self.media(id).is_some_and(|m| m.queue_prompt(text, GatherState::new(spec))) {
            self.play_next(id, at);
        }
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
            m.start_gather(state, prompting);
        }
    }

    fn interrupt_gather(&mut self, id: u64, at: VTime, status: GatherStatus) {
        if let Some(step) = self.media(id).and_then(|m| m.interrupt_gather(status)) {
            self.apply_gather_step(id, at, step);
        }
    }

    /// Starts the next queued item, if nothing plays.
    fn play_next(&mut self, id: u64, at: VTime) {
        let Some(m) = self.media(id) else { return };
        let (text, prompt) = match m.up_next() {
            UpNext::Busy => return,
            UpNext::Empty => {
                self.party_poll(id, at);
                return;
            }
            UpNext::Play { text, prompt, gather } => {
                if let Some(g) = gather {
                    self.install_gather(id, at, *g, true);
                }
                (text, prompt)
            }
        };
        let Some(speech) = self.next_speech(id, text, at) else { return };
        let duration = self.cfg.timing.ivr_speech_duration(speech.words);
        self.schedule_interims(id, Source::Ivr, &speech);
        if let Some(m) = self.media(id) {
            m.play(speech, prompt);
        }
        if !prompt {
            self.emit(id, at, EventType::SpeakStarted, false, json!({}));
        }
        self.set_timer(id, Slot::Media, at.saturating_add(duration));
        self.party_poll(id, at);
    }

    /// The current speech finished playing.
    pub(crate) fn media_due(&mut self, id: u64, at: VTime) {
        let Some((speech, prompt)) = self.media(id).and_then(Media::finish_playing) else { return };
        self.schedule_final(id, Source::Ivr, &speech, at);
        if prompt {
            if let Some(first) = self.media(id).and_then(Media::prompt_done) {
                self.set_timer(id, Slot::Gather, at.saturating_add(first));
            }
        } else {
            self.emit(id, at, EventType::SpeakEnded, false, json!({ "status": "completed" }));
        }
        self.play_next(id, at);
        self.party_poll(id, at);
    }

    /// Stops a playing prompt early (a key was pressed): no transcript, no event.
    fn cut_prompt(&mut self, id: u64, at: VTime) {
        if !self.media(id).is_some_and(Media::cut_prompt) {
            return;
        }
        self.cancel_timer(id, Slot::Media);
        self.play_next(id, at);
        self.party_poll(id, at);
    }

    /// A DTMF key reached the leg (after `call.dtmf.received`).
    pub(crate) fn gather_key(&mut self, id: u64, at: VTime, key: char) {
        let Some((step, was_prompting)) = self.media(id).and_then(|m| m.gather_key(key)) else { return };
        // The gather's outcome first (gather.ended before anything queued
        // behind the prompt starts), then the prompt stops.
        self.apply_gather_step(id, at, step);
        if was_prompting {
            self.cut_prompt(id, at);
        }
    }

    /// A gather timeout ran out.
    pub(crate) fn gather_due(&mut self, id: u64, at: VTime, overall: bool) {
        if let Some(step) = self.media(id).and_then(|m| m.gather_timeout(overall)) {
            self.apply_gather_step(id, at, step);
        }
    }

    fn apply_gather_step(&mut self, id: u64, at: VTime, step: GatherStep) {
        match step {
            GatherStep::Continue => {
                if let Some(wait) = self.media(id).and_then(|m| m.inter_digit_timeout()) {
                    self.set_timer(id, Slot::Gather, at.saturating_add(wait));
                }
            }
            GatherStep::Retry { prompt } => {
                self.cancel_timer(id, Slot::Gather);
                if let Some(m) = self.media(id) {
                    m.retry(prompt);
                }
                self.play_next(id, at);
            }
            GatherStep::End { status, digits } => {
                let prompting = self.media(id).is_some_and(Media::end_gather);
                self.cancel_timer(id, Slot::Gather);
                self.cancel_timer(id, Slot::GatherOverall);
                if prompting {
                    self.cut_prompt(id, at);
                }
                self.emit(id, at, EventType::GatherEnded, true, json!({ "digits": digits, "status": status.as_str() }));
                self.party_poll(id, at);
            }
        }
    }

    /// Everything that plays on a leg ends because the leg hangs up.
    pub(crate) fn end_media_on_hangup(&mut self, id: u64, at: VTime) {
        let Some(CutShort { speaking, gathering }) = self.media(id).map(Media::hang_up) else { return };
        for slot in [Slot::Media, Slot::Gather, Slot::GatherOverall] {
            self.cancel_timer(id, slot);
        }
        if speaking {
            self.emit(id, at, EventType::SpeakEnded, false, json!({ "status": "call_hangup" }));
        }
        if gathering {
            self.interrupt_gather(id, at, GatherStatus::CallHangup);
        }
        self.stop_playback(id, at, "call_hangup");
    }

    // ----- playback ---------------------------------------------------------

    /// `playback_start`: `call.playback.started`, and `call.playback.ended`
    /// after the loops (never for `"infinity"` until stopped).
    pub(crate) fn start_playback(&mut self, id: u64, at: VTime, b: &PlaybackStart) {
        self.stop_playback(id, at, "cancelled");
        let (run, loops) = PlaybackRun::from_command(b);
        let fields = run.fields(None);
        if let Some(m) = self.media(id) {
            m.start_playback(run);
        }
        self.emit(id, at, EventType::PlaybackStarted, false, fields);
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
        let Some(run) = self.media(id).and_then(Media::stop_playback) else { return };
        self.cancel_timer(id, Slot::Playback);
        self.emit(id, at, EventType::PlaybackEnded, false, run.fields(Some(status)));
    }

    pub(crate) fn playback_due(&mut self, id: u64, at: VTime) {
        self.stop_playback(id, at, "completed");
    }

    // ----- streaming and recording -----------------------------------------

    pub(crate) fn start_streaming(&mut self, id: u64, at: VTime, url: String) {
        if let Some(m) = self.media(id) {
            m.start_streaming(url.clone().into());
        }
        self.emit(id, at, EventType::StreamingStarted, false, json!({ "stream_url": url }));
    }

    pub(crate) fn stop_streaming(&mut self, id: u64, at: VTime) {
        if let Some(url) = self.media(id).and_then(Media::stop_streaming) {
            self.emit(id, at, EventType::StreamingStopped, false, json!({ "stream_url": &*url }));
        }
    }

    pub(crate) fn start_recording(&mut self, id: u64, at: VTime, b: &RecordStart) {
        let r = Recording { started: at, channels: b.channels.clone().unwrap_or_else(|| "single".into()) };
        if let Some(m) = self.media(id) {
            m.start_recording(r);
        }
    }

    pub(crate) fn stop_recording(&mut self, id: u64, at: VTime) {
        if let Some(r) = self.media(id).and_then(Media::stop_recording) {
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
            "recording_started_at": self.time(id, r.started),
            "recording_ended_at": self.time(id, at),
        });
        let (session, ccid, url) = ((leg.session, leg.began), leg.ccid.clone(), leg.url.clone());
        self.push_emitted(session, ccid, url, EventType::RecordingSaved, at, payload);
    }

    // ----- transcription ----------------------------------------------------

    pub(crate) fn start_transcription(&mut self, id: u64, at: VTime, b: &TranscriptionStart) {
        let t = Transcribing::from_command(b, at);
        if let Some(m) = self.media(id) {
            m.transcribe(t);
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
                self.legs.get(&target).filter(|l| l.alive()).is_some_and(|l| l.media.transcribes(&tick, inbound));
            if wanted {
                self.emit(
                    target,
                    at,
                    EventType::Transcription,
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
