//! `ivrx watch --all`: every call in progress on one terminal screen, from the
//! server's board stream (`/api/v1/board/events`), riskiest first. Arrow keys
//! select, Enter follows a call (Esc returns), `t` transfers it after a
//! confirmation (the server's exactly-once guard, as `ivrx transfer`), `/`
//! filters, `s` changes the order, `q` quits. `--json` prints the stream as
//! NDJSON instead.
//!
//! [`Board`] holds the screen's state and draws it; it does no I/O, so tests
//! drive it with keys and rows and read what it drew from a test backend.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::admin::{AdminClient, AdminError};
use super::exit;
use super::view::ConversationView;
use super::watch::SseParser;
use crate::http::url_path;
use crate::server::live::{ActiveConversation, BoardChange, Phase};
use crate::session::Recorded;

/// The order of the rows (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Riskiest first.
    Risk,
    /// Longest first.
    Duration,
    /// Lowest smoothed level first.
    Level,
    /// By caller.
    Caller,
}

impl SortKey {
    fn next(self) -> Self {
        match self {
            SortKey::Risk => SortKey::Duration,
            SortKey::Duration => SortKey::Level,
            SortKey::Level => SortKey::Caller,
            SortKey::Caller => SortKey::Risk,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SortKey::Risk => "risk",
            SortKey::Duration => "duration",
            SortKey::Level => "level",
            SortKey::Caller => "caller",
        }
    }
}

/// What the screen is doing.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    List,
    /// Typing a filter.
    Filter,
    /// Asking whether to transfer this conversation.
    Confirm(String),
    /// Following one conversation: its lines so far.
    Follow {
        id: String,
        lines: Vec<String>,
    },
}

/// What a key asks the program to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave.
    Quit,
    /// Follow this conversation.
    Follow(String),
    /// Stop following.
    Unfollow,
    /// Transfer this conversation (confirmed).
    Transfer(String),
}

/// The board's state.
pub struct Board {
    rows: HashMap<String, ActiveConversation>,
    selected: usize,
    sort: SortKey,
    filter: String,
    mode: Mode,
    /// The status line (connection, last transfer result).
    pub status: String,
    color: bool,
}

/// Lines of a followed conversation kept.
const FOLLOW_LINES: usize = 500;

impl Board {
    /// An empty board; `color` off for `NO_COLOR` or when not a terminal.
    pub fn new(color: bool) -> Self {
        Self {
            rows: HashMap::new(),
            selected: 0,
            sort: SortKey::Risk,
            filter: String::new(),
            mode: Mode::List,
            status: "connecting…".into(),
            color,
        }
    }

    /// Replaces every row (a snapshot).
    pub fn snapshot(&mut self, calls: Vec<ActiveConversation>) {
        self.rows = calls.into_iter().map(|c| (c.conversation_id.clone(), c)).collect();
        self.clamp();
    }

    /// Applies one change.
    pub fn apply(&mut self, change: BoardChange) {
        match change {
            BoardChange::Call { call } => {
                self.rows.insert(call.conversation_id.clone(), *call);
            }
            BoardChange::Removed { conversation_id } => {
                self.rows.remove(&conversation_id);
            }
        }
        self.clamp();
    }

    /// Lines of the followed conversation, if it is `id`.
    pub fn follow_lines(&mut self, id: &str, lines: Vec<String>) {
        if let Mode::Follow { id: followed, lines: kept } = &mut self.mode {
            if followed == id {
                kept.extend(lines);
                let extra = kept.len().saturating_sub(FOLLOW_LINES);
                kept.drain(..extra);
            }
        }
    }

    fn clamp(&mut self) {
        self.selected = self.selected.min(self.visible().len().saturating_sub(1));
    }

    /// The rows shown, in order.
    pub fn visible(&self) -> Vec<&ActiveConversation> {
        let needle = self.filter.to_lowercase();
        let mut v: Vec<_> = self
            .rows
            .values()
            .filter(|r| {
                needle.is_empty()
                    || [
                        r.caller.as_deref(),
                        Some(&r.conversation_id),
                        r.last_utterance.as_deref(),
                        r.decision.as_deref(),
                    ]
                    .into_iter()
                    .flatten()
                    .any(|s| s.to_lowercase().contains(&needle))
            })
            .collect();
        let by_start = |a: &&ActiveConversation, b: &&ActiveConversation| a.started_at.cmp(&b.started_at);
        match self.sort {
            SortKey::Risk => v.sort_by(|a, b| b.risk.total_cmp(&a.risk).then_with(|| by_start(a, b))),
            SortKey::Duration => v.sort_by(by_start),
            SortKey::Level => {
                v.sort_by(|a, b| a.level.unwrap_or(0.0).total_cmp(&b.level.unwrap_or(0.0)).then_with(|| by_start(a, b)))
            }
            SortKey::Caller => v.sort_by(|a, b| a.caller.cmp(&b.caller).then_with(|| by_start(a, b))),
        }
        v
    }

    fn selected_id(&self) -> Option<String> {
        self.visible().get(self.selected).map(|r| r.conversation_id.clone())
    }

    /// Handles a key.
    pub fn key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Action::Quit;
        }
        match (&self.mode, key.code) {
            (Mode::Filter, KeyCode::Enter | KeyCode::Esc) => {
                if key.code == KeyCode::Esc {
                    self.filter.clear();
                }
                self.mode = Mode::List;
            }
            (Mode::Filter, KeyCode::Backspace) => {
                self.filter.pop();
            }
            (Mode::Filter, KeyCode::Char(c)) => self.filter.push(c),
            (Mode::Filter, _) => {}
            (Mode::Confirm(id), KeyCode::Char('y' | 'Y')) => {
                let id = id.clone();
                self.mode = Mode::List;
                self.status = format!("transferring {}…", short(&id));
                return Action::Transfer(id);
            }
            (Mode::Confirm(_), _) => {
                self.mode = Mode::List;
                self.status = "transfer cancelled".into();
            }
            (Mode::Follow { .. }, KeyCode::Esc | KeyCode::Backspace) => {
                self.mode = Mode::List;
                return Action::Unfollow;
            }
            (Mode::Follow { id, .. }, KeyCode::Char('t')) => self.mode = Mode::Confirm(id.clone()),
            (_, KeyCode::Char('q')) => return Action::Quit,
            (Mode::Follow { .. }, _) => {}
            (Mode::List, KeyCode::Down | KeyCode::Char('j')) => {
                self.selected = (self.selected + 1).min(self.visible().len().saturating_sub(1))
            }
            (Mode::List, KeyCode::Up | KeyCode::Char('k')) => self.selected = self.selected.saturating_sub(1),
            (Mode::List, KeyCode::Home) => self.selected = 0,
            (Mode::List, KeyCode::End) => self.selected = self.visible().len().saturating_sub(1),
            (Mode::List, KeyCode::Enter) => {
                if let Some(id) = self.selected_id() {
                    self.mode = Mode::Follow { id: id.clone(), lines: Vec::new() };
                    return Action::Follow(id);
                }
            }
            (Mode::List, KeyCode::Char('t')) => {
                if let Some(id) = self.selected_id() {
                    self.mode = Mode::Confirm(id);
                }
            }
            (Mode::List, KeyCode::Char('/')) => self.mode = Mode::Filter,
            (Mode::List, KeyCode::Char('s')) => {
                self.sort = self.sort.next();
                self.selected = 0;
            }
            (Mode::List, _) => {}
        }
        Action::None
    }

    fn style(&self, s: Style) -> Style {
        if self.color {
            s
        } else {
            Style::default().add_modifier(s.add_modifier)
        }
    }

    /// Draws the board (or the followed conversation) at time `now`.
    pub fn draw(&self, f: &mut Frame, now: DateTime<Utc>) {
        let [head, body, foot] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(f.area());
        let calls = self.rows.values().filter(|r| !r.ended).count();
        let mut title = format!("ivrx board · {calls} active · sort: {}", self.sort.name());
        if !self.filter.is_empty() || self.mode == Mode::Filter {
            title.push_str(&format!(" · filter: {}", self.filter));
        }
        title.push_str(&format!(" · {}", self.status));
        f.render_widget(Paragraph::new(title).style(Style::default().add_modifier(Modifier::BOLD)), head);
        let help = match &self.mode {
            Mode::List => "↑↓ select  Enter follow  t transfer  / filter  s sort  q quit".to_string(),
            Mode::Filter => "type to filter  Enter keep  Esc clear".to_string(),
            Mode::Confirm(id) => {
                let who = self.rows.get(id).and_then(|r| r.caller.clone()).unwrap_or_else(|| short(id).to_string());
                format!("Transfer {who} ({}) to an agent now? y / n", short(id))
            }
            Mode::Follow { .. } => "Esc back  t transfer  q quit".to_string(),
        };
        let help_style = match self.mode {
            Mode::Confirm(_) => self.style(Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD)),
            _ => Style::default().add_modifier(Modifier::DIM),
        };
        f.render_widget(Paragraph::new(help).style(help_style), foot);
        if let Mode::Follow { id, lines } = &self.mode {
            let who = self.rows.get(id).and_then(|r| r.caller.clone()).unwrap_or_default();
            let mut text =
                vec![Line::from(format!("following {who} {id}")).style(Style::default().add_modifier(Modifier::BOLD))];
            let room = body.height.saturating_sub(1) as usize;
            text.extend(lines.iter().skip(lines.len().saturating_sub(room)).map(|l| Line::from(l.as_str())));
            f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), body);
            return;
        }
        let rows = self.visible();
        if rows.is_empty() {
            let text = if self.rows.is_empty() { "No call in progress." } else { "No call matches the filter." };
            f.render_widget(Paragraph::new(text), body);
            return;
        }
        let wide = body.width >= 110;
        let mut header = vec!["", "caller", "time", "phase", "level", "scores", "decision", "last words"];
        if wide {
            header.insert(7, "trackers");
        }
        let table_rows = rows.iter().enumerate().map(|(i, r)| {
            let level_style = match r.level {
                Some(l) if l < -0.2 => self.style(Style::default().fg(Color::Red)),
                _ => Style::default(),
            };
            let mut cells = vec![
                Cell::from(if i == self.selected { "▶" } else { " " }),
                Cell::from(r.caller.clone().unwrap_or_else(|| short(&r.conversation_id).to_string())),
                Cell::from(duration(r, now)),
                Cell::from(phase(r.phase)),
                Cell::from(r.level.map_or("-".into(), |l| format!("{l:+.2}"))).style(level_style),
                Cell::from(sparkline(r.scores.iter().copied())),
                Cell::from(r.decision.clone().unwrap_or_default()).style(self.style(Style::default().fg(Color::Red))),
                Cell::from(r.last_utterance.clone().unwrap_or_default()),
            ];
            if wide {
                cells.insert(7, Cell::from(r.trackers.join(",")));
            }
            let mut style = Style::default();
            if r.ended {
                style = style.add_modifier(Modifier::DIM);
            }
            if i == self.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(cells).style(style)
        });
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Length(13),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(15),
            Constraint::Min(10),
        ];
        if wide {
            widths.insert(7, Constraint::Length(16));
        }
        let table = Table::new(table_rows, widths)
            .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)))
            .column_spacing(1);
        f.render_widget(table, body);
    }
}

/// The first 8 characters of an id.
fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn phase(p: Phase) -> &'static str {
    match p {
        Phase::WithAgent => "agent",
        Phase::Transferring => "transfer",
        other => other.as_str(),
    }
}

fn duration(r: &ActiveConversation, now: DateTime<Utc>) -> String {
    let Some(start) = r.started_at.as_deref().and_then(|s| DateTime::parse_from_rfc3339(s).ok()) else {
        return "-".into();
    };
    // An ended call's duration stops at its last event.
    let end = r.updated_at.as_deref().filter(|_| r.ended).and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    let end = end.map_or(now, |e| e.with_timezone(&Utc));
    let secs = (end - start.with_timezone(&Utc)).num_seconds().max(0);
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// Scores in [-1, 1] as block characters, the last 8.
pub fn sparkline(scores: impl DoubleEndedIterator<Item = f64> + ExactSizeIterator) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let skip = scores.len().saturating_sub(8);
    scores.skip(skip).map(|s| BARS[(((s.clamp(-1.0, 1.0) + 1.0) / 2.0) * 7.0).round() as usize]).collect()
}

/// What the board's tasks tell the screen.
enum Msg {
    Key(KeyEvent),
    Resize,
    Snapshot(Vec<ActiveConversation>),
    Change(BoardChange),
    Status(String),
    Lines(String, Vec<String>),
}

/// Reads the board stream into `tx`, reconnecting (and saying so) until the
/// screen goes.
async fn board_stream(client: AdminClient, tx: mpsc::Sender<Msg>) {
    let mut pause = Duration::from_millis(500);
    loop {
        match client.stream("/api/v1/board/events").await {
            Ok(mut resp) => {
                pause = Duration::from_millis(500);
                let _ = tx.send(Msg::Status("live".into())).await;
                let mut parser = SseParser::default();
                while let Ok(Some(chunk)) = resp.chunk().await {
                    for (event, data) in parser.feed(&chunk) {
                        let msg = match event.as_str() {
                            "snapshot" => serde_json::from_str::<Value>(&data)
                                .ok()
                                .and_then(|v| serde_json::from_value(v["calls"].clone()).ok())
                                .map(Msg::Snapshot),
                            _ => serde_json::from_str::<BoardChange>(&data).ok().map(Msg::Change),
                        };
                        if let Some(m) = msg {
                            if tx.send(m).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = tx.send(Msg::Status("the server went away; reconnecting…".into())).await;
            }
            Err(e @ (AdminError::Unauthorized | AdminError::NoToken(_))) => {
                let _ = tx.send(Msg::Status(e.to_string())).await;
                return;
            }
            Err(e) => {
                if tx.send(Msg::Status(format!("{e}; reconnecting…"))).await.is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Follows one conversation into `tx` as the single-call view's lines.
async fn follow(client: AdminClient, id: String, tx: mpsc::Sender<Msg>) {
    let path = format!("/api/v1/conversations/{}/events", url_path::encode(&id, url_path::SEGMENT));
    let Ok(mut resp) = client.stream(&path).await else {
        let _ = tx.send(Msg::Lines(id, vec!["(the conversation's stream could not be opened)".into()])).await;
        return;
    };
    let mut view = ConversationView::new(false);
    let mut parser = SseParser::default();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let mut lines = Vec::new();
        for (_, data) in parser.feed(&chunk) {
            if let Ok(r) = serde_json::from_str::<Recorded>(&data) {
                lines.extend(view.push(&r));
            }
        }
        if !lines.is_empty() && tx.send(Msg::Lines(id.clone(), lines)).await.is_err() {
            return;
        }
    }
}

/// `--json`: the board stream as NDJSON (`snapshot`, then `call` and
/// `removed` lines) until the server goes.
async fn ndjson(client: &AdminClient) -> anyhow::Result<ExitCode> {
    let mut resp = client.stream("/api/v1/board/events").await?;
    let mut parser = SseParser::default();
    let mut out = std::io::stdout().lock();
    while let Ok(Some(chunk)) = resp.chunk().await {
        for (event, data) in parser.feed(&chunk) {
            let Ok(mut v) = serde_json::from_str::<Value>(&data) else { continue };
            if event == "snapshot" {
                v = json!({"type": "snapshot", "calls": v["calls"], "at": v["at"]});
            }
            writeln!(out, "{v}")?;
            out.flush()?;
        }
    }
    eprintln!("error: the server went away");
    Ok(exit::code(exit::UNREACHABLE))
}

/// Most messages applied between two frames of the terminal board.
const MAX_PER_FRAME: usize = 1024;

/// What the terminal board's loop holds besides the board: the server, its
/// own message queue and the call it follows.
struct Screen {
    client: AdminClient,
    tx: mpsc::Sender<Msg>,
    following: Option<tokio::task::JoinHandle<()>>,
}

impl Screen {
    /// Applies one message to `board`; false once the board closes (`q`, or
    /// every sender gone).
    fn handle(&mut self, board: &mut Board, msg: Option<Msg>) -> bool {
        match msg {
            None => return false,
            Some(Msg::Key(k)) => match board.key(k) {
                Action::Quit => return false,
                Action::Follow(id) => {
                    self.following.take().inspect(|t| t.abort());
                    self.following = Some(tokio::spawn(follow(self.client.clone(), id, self.tx.clone())));
                }
                Action::Unfollow => {
                    self.following.take().inspect(|t| t.abort());
                }
                Action::Transfer(id) => {
                    let (client, tx) = (self.client.clone(), self.tx.clone());
                    tokio::spawn(async move {
                        let path =
                            format!("/api/v1/conversations/{}/transfer", url_path::encode(&id, url_path::SEGMENT));
                        let status = match client.post(&path, &json!({})).await {
                            Ok(_) => format!("transfer of {} requested", short(&id)),
                            Err(e) => format!("not transferred: {e}"),
                        };
                        let _ = tx.send(Msg::Status(status)).await;
                    });
                }
                Action::None => {}
            },
            Some(Msg::Resize) => {}
            Some(Msg::Snapshot(calls)) => board.snapshot(calls),
            Some(Msg::Change(c)) => board.apply(c),
            Some(Msg::Status(s)) => board.status = s,
            Some(Msg::Lines(id, lines)) => board.follow_lines(&id, lines),
        }
        true
    }
}

/// Runs the board until `q`.
pub async fn run(client: AdminClient, json: bool, color: bool) -> anyhow::Result<ExitCode> {
    if json {
        return ndjson(&client).await;
    }
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return Err(exit::usage("watch", "the board needs a terminal; use --json for scripts"));
    }
    let (tx, mut rx) = mpsc::channel(1024);
    let keys = tx.clone();
    std::thread::spawn(move || loop {
        let msg = match event::read() {
            Ok(Event::Key(k)) => Msg::Key(k),
            Ok(Event::Resize(..)) => Msg::Resize,
            Ok(_) => continue,
            Err(_) => return,
        };
        if keys.blocking_send(msg).is_err() {
            return;
        }
    });
    let stream = tokio::spawn(board_stream(client.clone(), tx.clone()));
    let mut screen = Screen { client, tx, following: None };
    let mut board = Board::new(color);
    let mut terminal = ratatui::init();
    let result = loop {
        if let Err(e) = terminal.draw(|f| board.draw(f, Utc::now())) {
            break Err(e.into());
        }
        let Ok(msg) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await else { continue };
        let mut open = screen.handle(&mut board, msg);
        // What is already waiting is applied before the next frame: a burst
        // of changes costs one draw, and the screen never falls behind.
        for _ in 0..MAX_PER_FRAME {
            if !open {
                break;
            }
            match rx.try_recv() {
                Ok(msg) => open = screen.handle(&mut board, Some(msg)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        if !open {
            break Ok(());
        }
    };
    ratatui::restore();
    stream.abort();
    screen.following.inspect(|t| t.abort());
    result.map(|()| exit::code(exit::OK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn row(id: &str, caller: &str, level: f64, said: &str) -> ActiveConversation {
        let mut r = ActiveConversation {
            conversation_id: id.into(),
            caller: Some(caller.into()),
            started_at: Some("2026-03-01T10:00:00Z".into()),
            level: Some(level),
            scores: [0.2, level].into(),
            last_utterance: Some(said.into()),
            phase: Phase::Ivr,
            ..Default::default()
        };
        r.risk = r.risk_of();
        r
    }

    fn board() -> Board {
        let mut b = Board::new(true);
        b.snapshot(vec![
            row("aaaaaaaa-1", "+15550001", 0.5, "thanks that helps"),
            row("bbbbbbbb-2", "+15550002", -0.7, "this is ridiculous"),
            row("cccccccc-3", "+15550003", 0.0, "a charge from the fourteenth"),
        ]);
        b.status = "live".into();
        b
    }

    fn screen(b: &Board, width: u16, height: u16) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-03-01T10:01:05Z").unwrap().with_timezone(&Utc);
        t.draw(|f| b.draw(f, now)).unwrap();
        let buf = t.backend().buffer().clone();
        let lines = (0..height)
            .map(|y| (0..width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string())
            .collect();
        (lines, buf)
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn riskiest_first_in_80_by_24() {
        let b = board();
        let (lines, _) = screen(&b, 80, 24);
        assert!(lines[0].starts_with("ivrx board · 3 active · sort: risk · live"), "{lines:#?}");
        let order: Vec<usize> = ["+15550002", "+15550003", "+15550001"]
            .iter()
            .map(|c| lines.iter().position(|l| l.contains(c)).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{lines:#?}");
        let top = &lines[order[0]];
        assert!(top.starts_with('▶') && top.contains("1:05") && top.contains("-0.70") && top.contains("▅▂"), "{top}");
        assert!(lines[23].contains("t transfer") && lines[23].contains("q quit"), "{lines:#?}");
    }

    #[test]
    fn keys_select_follow_filter_and_confirm_a_transfer() {
        let mut b = board();
        assert_eq!(b.key(key(KeyCode::Down)), Action::None);
        assert_eq!(b.key(key(KeyCode::Enter)), Action::Follow("cccccccc-3".into()));
        b.follow_lines("cccccccc-3", vec!["+0:00 caller  a charge from the fourteenth".into()]);
        let (lines, _) = screen(&b, 80, 24);
        assert!(lines[1].starts_with("following +15550003 cccccccc-3"), "{lines:#?}");
        assert!(lines[2].contains("a charge from the fourteenth"), "{lines:#?}");
        assert_eq!(b.key(key(KeyCode::Esc)), Action::Unfollow);

        // `t` asks first; anything but `y` cancels.
        assert_eq!(b.key(key(KeyCode::Char('t'))), Action::None);
        let (lines, _) = screen(&b, 80, 24);
        assert!(lines[23].starts_with("Transfer +15550003 (cccccccc) to an agent now? y / n"), "{lines:#?}");
        assert_eq!(b.key(key(KeyCode::Char('n'))), Action::None);
        assert_eq!(b.key(key(KeyCode::Char('t'))), Action::None);
        assert_eq!(b.key(key(KeyCode::Char('y'))), Action::Transfer("cccccccc-3".into()));

        // `/` filters on caller, id, words or decision.
        b.key(key(KeyCode::Char('/')));
        for c in "ridic".chars() {
            b.key(key(KeyCode::Char(c)));
        }
        b.key(key(KeyCode::Enter));
        assert_eq!(b.visible().iter().map(|r| r.conversation_id.as_str()).collect::<Vec<_>>(), ["bbbbbbbb-2"]);
        let (lines, _) = screen(&b, 80, 24);
        assert!(lines[0].contains("filter: ridic"), "{lines:#?}");
        b.key(key(KeyCode::Char('/')));
        b.key(key(KeyCode::Esc));
        assert_eq!(b.visible().len(), 3);

        // `s` changes the order; `q` quits.
        b.key(key(KeyCode::Char('s')));
        assert_eq!(screen(&b, 80, 24).0[0], "ivrx board · 3 active · sort: duration · transferring cccccccc…");
        assert_eq!(b.key(key(KeyCode::Char('q'))), Action::Quit);
    }

    #[test]
    fn changes_and_removals_keep_the_selection_on_the_board() {
        let mut b = board();
        b.key(key(KeyCode::End));
        b.apply(BoardChange::Removed { conversation_id: "aaaaaaaa-1".into() });
        b.apply(BoardChange::Removed { conversation_id: "cccccccc-3".into() });
        assert_eq!(b.key(key(KeyCode::Enter)), Action::Follow("bbbbbbbb-2".into()));
        b.key(key(KeyCode::Esc));
        b.apply(BoardChange::Removed { conversation_id: "bbbbbbbb-2".into() });
        assert!(screen(&b, 80, 24).0.iter().any(|l| l == "No call in progress."));
        assert_eq!(b.key(key(KeyCode::Enter)), Action::None);
    }

    #[test]
    fn no_colour_means_no_colour() {
        let mut b = board();
        b.color = false;
        b.key(key(KeyCode::Char('t')));
        let (_, buf) = screen(&b, 120, 24);
        assert!(buf.content().iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset), "a coloured cell");
        let (_, coloured) = screen(&board(), 120, 24);
        assert!(coloured.content().iter().any(|c| c.fg == Color::Red));
    }

    /// A screen as SVG: one `<text>` per run of cells alike, each placed on
    /// the character grid, in a dark terminal's colours.
    fn svg(buf: &ratatui::buffer::Buffer) -> String {
        const CELL: (u16, u16) = (9, 20);
        let colour = |c: Color, default: &'static str| match c {
            Color::Red => "#f26d6d",
            Color::Yellow => "#e5c07b",
            _ => default,
        };
        let (w, h) = (buf.area.width, buf.area.height);
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {0} {1}\" \
             font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"15\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"#1d1f21\"/>\n",
            w * CELL.0 + 16,
            h * CELL.1 + 16
        );
        for y in 0..h {
            let mut x = 0;
            while x < w {
                let first = &buf[(x, y)];
                let mut run = String::new();
                let start = x;
                while x < w && {
                    let c = &buf[(x, y)];
                    c.fg == first.fg && c.modifier == first.modifier
                } {
                    run.push_str(buf[(x, y)].symbol());
                    x += 1;
                }
                let reversed = first.modifier.contains(Modifier::REVERSED);
                let (mut fg, bg) = (colour(first.fg, "#d7dae0"), "#1d1f21");
                let (px, py) = (8 + start * CELL.0, 8 + y * CELL.1);
                if reversed {
                    let width = (x - start) * CELL.0;
                    out.push_str(&format!(
                        "<rect x=\"{px}\" y=\"{py}\" width=\"{width}\" height=\"{}\" fill=\"{fg}\"/>\n",
                        CELL.1
                    ));
                    fg = bg;
                }
                // Trailing blanks drawn as nothing, unless underlined.
                let cols = if first.modifier.contains(Modifier::UNDERLINED) {
                    x - start
                } else {
                    run.truncate(run.trim_end().len());
                    run.chars().count() as u16
                };
                if cols == 0 {
                    continue;
                }
                let mut attrs = format!("fill=\"{fg}\"");
                if first.modifier.contains(Modifier::BOLD) {
                    attrs.push_str(" font-weight=\"bold\"");
                }
                if first.modifier.contains(Modifier::DIM) {
                    attrs.push_str(" opacity=\"0.6\"");
                }
                if first.modifier.contains(Modifier::UNDERLINED) {
                    attrs.push_str(" text-decoration=\"underline\"");
                }
                let text = run.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
                out.push_str(&format!(
                    "<text x=\"{px}\" y=\"{}\" textLength=\"{}\" lengthAdjust=\"spacingAndGlyphs\" xml:space=\"preserve\" {attrs}>{text}</text>\n",
                    py + 15,
                    cols * CELL.0
                ));
            }
        }
        out.push_str("</svg>\n");
        out
    }

    /// The README's picture of the terminal board (`docs/board-terminal.svg`),
    /// drawn from a realistic board: it must match what the board draws now
    /// (`IVRX_UPDATE_DOCS=1` writes it anew).
    #[test]
    fn the_readme_picture_is_what_the_board_draws() {
        let mut b = Board::new(true);
        let mut calls = vec![
            row("3f2a9c41-77d0", "+15550142", -0.74, "this is ridiculous i am so sick of this terrible service"),
            row("8c1d07b2-1e55", "+15550187", -0.31, "i already restarted the router twice"),
            row("a9e4410f-c2b8", "+15550123", 0.05, "there is a charge from the fourteenth"),
            row("51b7e2d0-94aa", "+15550166", 0.42, "great that fixed it thank you"),
            row("d04c8e5a-0b13", "+15550109", -0.12, "can i speak to a real person"),
            row("e7f35a90-6c21", "+15550175", 0.0, ""),
        ];
        calls[0].scores = [0.1, -0.2, -0.45, -0.6, -0.74].into();
        calls[0].decision = Some("sentiment_drop".into());
        calls[0].phase = Phase::Transferring;
        calls[0].trackers = vec!["churn_risk".into()];
        calls[1].scores = [0.0, -0.1, -0.3, -0.31].into();
        calls[1].trackers = vec!["repeat_issue".into()];
        calls[4].decision = Some("asked_for_human".into());
        calls[4].phase = Phase::WithAgent;
        calls[4].scores = [0.2, 0.0, -0.12].into();
        calls[5].phase = Phase::Ringing;
        (calls[5].level, calls[5].scores, calls[5].last_utterance) = (None, [].into(), None);
        for (i, c) in calls.iter_mut().enumerate() {
            c.started_at = Some(format!("2026-03-01T09:{:02}:{:02}Z", 55 + i / 2, (i * 17) % 60));
            c.risk = c.risk_of();
        }
        b.snapshot(calls);
        b.status = "live".into();
        b.key(key(KeyCode::Down));
        let (_, buf) = screen(&b, 120, 10);
        let drawn = svg(&buf);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/board-terminal.svg");
        if std::env::var_os("IVRX_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &drawn).unwrap();
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(kept == drawn, "{} is not what the board draws now: IVRX_UPDATE_DOCS=1 writes it", path.display());
    }

    #[test]
    fn sparklines_read_low_to_high() {
        assert_eq!(sparkline([-1.0, 0.0, 1.0].into_iter()), "▁▅█");
        assert_eq!(sparkline((0..20).map(|_| 0.0)).chars().count(), 8);
    }
}
