"""External evaluation: public human-annotated sets the weights never saw.

    python train/evaluate.py        # prints the table, writes results/external.{json,md}

Every engine scores the same speech-recognition form of each utterance
(lower case, no punctuation):

- `vader`: plain VADER (the vader-parity crate inside ivrx, which matches
  Python vaderSentiment 3.3.2; checked below);
- `lexicon`: the local engine without the learned model (VADER plus the
  contact-centre lexicon, negation and sarcasm rules);
- `learned`: the local engine as it ships (the learned model stacked on the
  lexicon).

For context only, `vader_orig` is Python vaderSentiment on the original,
punctuated and capitalised text (what VADER was designed for; a transcript
never has it).

Figures: Pearson and Spearman correlation with the human rating where the
rating is continuous or ordinal; ROC AUC for the negative class (the lower
the score, the more negative); for the satisfaction sets, AUC for the
dissatisfied turns, also from the learned model's dissatisfaction
probability.
"""

from __future__ import annotations

import os

# One BLAS thread: the machine is shared, and small matrices gain nothing.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

import datasets
import engine
import model

HERE = Path(__file__).parent
WEIGHTS = HERE.parent / "src" / "intel" / "learned" / "weights.bin"

DESCRIPTIONS = {
    "uss_sgd": ("Schema-Guided Dialogue user turns, turn-level satisfaction 1-5", "conversational, task-oriented"),
    "uss_mwoz": ("MultiWOZ user turns, turn-level satisfaction 1-5", "conversational, task-oriented"),
    "uss_redial": ("ReDial user turns, turn-level satisfaction 1-5", "conversational, recommendation"),
    "uss_ccpe": ("CCPE-M user turns, turn-level satisfaction 1-5", "conversational, preference elicitation"),
    "meld": ("MELD test split, Friends dialogue, negative/neutral/positive", "conversational, TV dialogue"),
    "emobank": ("EmoBank, valence 1-5 (news, blogs, letters, fiction)", "written"),
    "tweets": ("VADER tweets, mean of 20 ratings -4..4", "social media"),
    "movie_reviews": ("VADER movie-review snippets, -4..4", "reviews"),
    "amazon_reviews": ("VADER Amazon review snippets, -4..4", "reviews"),
    "nyt_editorials": ("VADER NYT editorial snippets, -4..4", "news opinion"),
}
SATISFACTION = ("uss_sgd", "uss_mwoz", "uss_redial", "uss_ccpe")


def main() -> None:
    sets = datasets.evaluation_sets()
    exported = model.Exported(WEIGHTS.read_bytes())
    py_vader = SentimentIntensityAnalyzer()
    results = []
    worst_parity = 0.0
    vader_mismatch = 0
    for name, examples in sets.items():
        lines = [e.asr for e in examples]
        scored = engine.score(lines, name)
        y = np.array([e.valence for e in examples])
        neg = np.array([e.negative for e in examples])
        preds = {
            "vader": np.array([s.vader for s in scored]),
            "lexicon": np.array([s.lexicon for s in scored]),
            "learned": np.array([s.learned for s in scored]),
            "vader_orig": np.array([py_vader.polarity_scores(e.text)["compound"] for e in examples]),
        }
        dissatisfied = np.array([s.dissatisfied for s in scored])
        # The engine reproduces the exported model, and vader-parity matches
        # Python vaderSentiment on the same text.
        for s in scored[:2000]:
            v, d = exported.score(s)
            worst_parity = max(worst_parity, abs(v - s.learned), abs(d - s.dissatisfied))
        for line, s in list(zip(lines, scored))[:500]:
            vader_mismatch += abs(py_vader.polarity_scores(line)["compound"] - s.vader) > 1e-3
        row = {"set": name, "about": DESCRIPTIONS[name][0], "kind": DESCRIPTIONS[name][1], "n": len(examples),
               "negative": int(neg.sum())}
        for k, p in preds.items():
            row[f"{k}_pearson"] = float(pearsonr(p, y)[0])
            row[f"{k}_spearman"] = float(spearmanr(p, y)[0])
            row[f"{k}_auc"] = float(roc_auc_score(neg, -p))
        row["learned_dissatisfied_auc"] = float(roc_auc_score(neg, dissatisfied))
        results.append(row)
        print(json.dumps(row), flush=True)
    print(f"largest engine/exported-model difference: {worst_parity:.2e}; vader-parity mismatches: {vader_mismatch}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "external.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "external.md").write_text(table(results))
    print(table(results))


def table(results: list[dict]) -> str:
    lines = [
        "| set | kind | n (negative) | metric | VADER | lexicon engine | learned engine | learned − VADER "
        "| learned dissatisfaction | VADER on original text |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        metrics = [("spearman", "Spearman"), ("auc", "AUC dissatisfied" if r["set"] in SATISFACTION else "AUC negative")]
        if r["set"] != "meld" and r["set"] not in SATISFACTION:
            metrics.insert(0, ("pearson", "Pearson"))
        for key, label in metrics:
            v, lx, le, vo = (r[f"{e}_{key}"] for e in ("vader", "lexicon", "learned", "vader_orig"))
            dis = f"{r['learned_dissatisfied_auc']:.3f}" if key == "auc" else ""
            lines.append(
                f"| {r['set']} | {r['kind']} | {r['n']} ({r['negative']}) | {label} | {v:.3f} | {lx:.3f} | {le:.3f} | "
                f"{le - v:+.3f} | {dis} | {vo:.3f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
