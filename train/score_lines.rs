//! Reads utterances, one per line of stdin, and prints one tab-separated line
//! per utterance: the normalised tokens (space-separated), a 0/1 flag per
//! token saying whether a negator reaches it, a 0/1 flag per token saying
//! whether a contact-centre phrase of the lexicon covers it, plain VADER's
//! compound on the line as given, the lexicon score, and the learned model's
//! valence and dissatisfaction.
//!
//! The training and external-evaluation scripts in `train/` use it so that
//! they see exactly the tokens the engine sees:
//! `cargo run --release --example score_lines < lines.txt > scored.tsv`

use std::io::{BufRead, BufWriter, Write};

use ivrx::intel::normalize::{negated_before, Normalized};
use ivrx::intel::{LocalEngine, Phrases, TrackerSet};

fn main() -> std::io::Result<()> {
    let engine = LocalEngine::new(TrackerSet::default());
    let stdin = std::io::stdin();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        let norm = Normalized::new(&line);
        let tokens: Vec<&str> = norm.words().collect();
        let flags: String = (0..norm.len()).map(|i| if negated_before(&norm, i) { '1' } else { '0' }).collect();
        let mut phrases = Phrases::default();
        engine.sentiment().score_with_phrases(&line, &norm, &mut |start, end| phrases.push(start, end));
        let covered: String = (0..norm.len()).map(|i| if phrases.covers(i) { '1' } else { '0' }).collect();
        let vader = engine.sentiment().general(&line);
        let a = engine.assess(&line);
        let learned = a.learned.unwrap_or(ivrx::intel::Learned { valence: a.lexicon, dissatisfied: 0.0 });
        writeln!(
            out,
            "{}\t{}\t{}\t{:.6}\t{:.6}\t{:.6}\t{:.6}",
            tokens.join(" "),
            flags,
            covered,
            vader,
            a.lexicon,
            learned.valence,
            learned.dissatisfied
        )?;
    }
    out.flush()
}
