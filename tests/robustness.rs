//! Fuzz-ish: odd text never panics the engine or the policy, and scores stay
//! in range.

use ivrx::intel::{LocalEngine, Scorer, TrackerSet};
use ivrx::keypad::Keypad;
use ivrx::policy::{observe, PolicyConfig, PolicyState, Utterance};
use ivrx::settings::IvrConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PIECES: &[&str] = &[
    "dont",
    "don't",
    "don",
    "t",
    "not",
    "no",
    "never",
    "but",
    "but",
    "ill",
    "id",
    "its",
    "i'm",
    "agent",
    "real",
    "person",
    "operator",
    "fucking",
    "useless",
    "oh",
    "great",
    "just",
    "perfect",
    "on",
    "hold",
    "for",
    "an",
    "hour",
    "again",
    "third",
    "time",
    "cancel",
    "my",
    "account",
    "upgrade",
    "how",
    "much",
    "is",
    "-",
    "|",
    "*",
    "^",
    "$",
    ",",
    "!!!",
    "???",
    "'",
    "’",
    "\u{0}",
    "\u{200b}",
    "\u{202e}",
    "\u{301}",
    "🙂",
    "😡",
    "İ",
    "ß",
    "ﬁ",
    "ǅ",
    "Ω",
    "中文",
    "عربي",
    "ｆｕｌｌ",
    "\t",
    "\n",
    "  ",
    "3rd",
    "10th",
    "4 7 7 2",
    "yeah",
    "right",
    "sorted",
];

fn random_text(rng: &mut StdRng) -> String {
    let n = rng.gen_range(0..40);
    let mut s = String::new();
    for _ in 0..n {
        if rng.gen_bool(0.1) {
            s.push(char::from_u32(rng.gen_range(0..0x11_0000)).unwrap_or('?'));
        } else {
            s.push_str(PIECES[rng.gen_range(0..PIECES.len())]);
        }
        if rng.gen_bool(0.8) {
            s.push(' ');
        }
    }
    s
}

#[test]
fn random_text_never_panics() {
    let engine = LocalEngine::default();
    let config = PolicyConfig::default();
    let ivr = IvrConfig::default();
    let keypad = Keypad::new(&ivr, &config);
    let mut rng = StdRng::seed_from_u64(7);
    for call in 0..300 {
        let mut state = PolicyState::default();
        for i in 0..12u32 {
            let text = random_text(&mut rng);
            let s = engine.score(&text);
            assert!((-1.0..=1.0).contains(&s.score), "{text:?}: {}", s.score);
            let _ = engine.explain(&text);
            let u = Utterance { index: i + 1, text: &text, score: &s, offset_ms: u64::from(i) * 1000 };
            let o = observe(&config, &mut state, &u);
            assert!(o.snapshot.level.is_finite());
            if call % 7 == 0 {
                let _ = keypad.route(&text);
            }
        }
    }
}

#[test]
fn huge_and_degenerate_inputs() {
    let engine = LocalEngine::default();
    for text in [
        "not ".repeat(20_000),
        "operator ".repeat(5_000),
        "é".repeat(50_000),
        "\u{301}".repeat(10_000),
        "a".repeat(100_000),
        String::new(),
    ] {
        let s = engine.score(&text);
        assert!((-1.0..=1.0).contains(&s.score));
    }
    // Configured phrases made of punctuation are refused or skipped, not fatal.
    let set = TrackerSet::new(vec![ivrx::intel::TrackerConfig {
        name: "odd".into(),
        phrases: vec!["".into(), "-".into(), "|||".into(), "* *".into(), "^$".into(), "ok".into()],
    }]);
    assert_eq!(set.detect("ok then").len(), 1);
}
