"""External evaluation: public human-annotated sets the weights never saw.

    python train/evaluate.py --sets uss_mwoz   # the development set only
    python train/evaluate.py                   # every set; writes results/external.{json,md}

Every engine scores the same speech-recognition form of each utterance
(lower case, no punctuation):

- `vader`: plain VADER (the vader-parity crate inside ivrx, which matches
  Python vaderSentiment 3.3.2; checked below);
- `lexicon`: the local engine without a learned model (VADER plus the
  contact-centre lexicon, negation and sarcasm rules);
- `linear`: the local engine with the first learned model (the word and
  bigram table alone, `benches/learned-v1.bin`), read by `model.Exported`,
  which reproduces the engine;
- `second`: the local engine with the second learned model (the weights of
  commit `SECOND`, read from git), read by `net.Exported`;
- `learned`: the local engine as it ships (the third learned model), run in
  the engine itself and checked against `net.Exported`.

For context only, `vader_orig` is Python vaderSentiment on the original,
punctuated and capitalised text (what VADER was designed for; a transcript
never has it).

Figures: Pearson and Spearman correlation with the human rating; ROC AUC for
the negative class (the lower the valence, the more negative), and for the
learned engines also from their dissatisfaction probability. Each set's
primary metric (README.md, "Evaluation protocol") decides whether the bar is
met.
"""

from __future__ import annotations

import os

# One BLAS thread: the machine is shared, and small matrices gain nothing.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

import datasets
import engine
import model
import net

HERE = Path(__file__).parent
WEIGHTS = HERE.parent / "crates" / "intel" / "src" / "learned" / "weights.bin"
WEIGHTS_V1 = HERE.parent / "benches" / "learned-v1.bin"
# The second learned model: the weights as this commit left them.
SECOND = "4ad4a4cd6ae0802cd6e64ed3c80d59e9cae91553"

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
DEVELOPMENT = ("uss_mwoz",)
ENGINES = ("vader", "lexicon", "linear", "second", "learned")


def primary(name: str) -> tuple[str, str]:
    """(metric key, label) of a set's primary metric, fixed in the protocol."""
    if name in SATISFACTION:
        return "auc_dis", "AUC dissatisfied (dissatisfaction probability)"
    if name == "meld":
        return "auc", "AUC negative"
    return "spearman", "Spearman"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="*", help="only these sets (the others are not computed)")
    args = ap.parse_args()
    all_sets = list(DESCRIPTIONS)
    wanted = args.sets or all_sets
    linear = model.Exported(WEIGHTS_V1.read_bytes())
    second = net.Exported(
        subprocess.run(
            ["git", "show", f"{SECOND}:crates/intel/src/learned/weights.bin"],
            cwd=HERE.parent, capture_output=True, check=True,
        ).stdout
    )
    shipped = net.Exported(WEIGHTS.read_bytes())
    py_vader = SentimentIntensityAnalyzer()
    results = []
    worst_parity = 0.0
    vader_mismatch = 0
    loaders = {"meld": datasets.meld, "emobank": datasets.emobank}
    for name in wanted:
        if name.startswith("uss_"):
            examples = datasets.uss(name[4:])
        elif name in loaders:
            examples = loaders[name]()
        else:
            examples = datasets.vader_sets()[name]
        lines = [e.asr for e in examples]
        scored = engine.score(lines, name)
        y = np.array([e.valence for e in examples])
        neg = np.array([e.negative for e in examples])
        lin = [linear.score(s) for s in scored]
        sec = [second.score(s) for s in scored]
        preds = {
            "vader": np.array([s.vader for s in scored]),
            "lexicon": np.array([s.lexicon for s in scored]),
            "linear": np.array([p[0] for p in lin]),
            "second": np.array([p[0] for p in sec]),
            "learned": np.array([s.learned for s in scored]),
            "vader_orig": np.array([py_vader.polarity_scores(e.text)["compound"] for e in examples]),
        }
        dissatisfied = {
            "vader": -preds["vader"],
            "lexicon": -preds["lexicon"],
            "linear": np.array([p[1] for p in lin]),
            "second": np.array([p[1] for p in sec]),
            "learned": np.array([s.dissatisfied for s in scored]),
        }
        # The engine reproduces the exported model, and vader-parity matches
        # Python vaderSentiment on the same text.
        for s in scored[:2000]:
            v, d = shipped.score(s)
            worst_parity = max(worst_parity, abs(v - s.learned), abs(d - s.dissatisfied))
        for line, s in list(zip(lines, scored))[:500]:
            vader_mismatch += abs(py_vader.polarity_scores(line)["compound"] - s.vader) > 1e-3
        row = {
            "set": name,
            "about": DESCRIPTIONS[name][0],
            "kind": DESCRIPTIONS[name][1],
            "role": "development" if name in DEVELOPMENT else "held out",
            "n": len(examples),
            "negative": int(neg.sum()),
        }
        for k, p in preds.items():
            row[f"{k}_pearson"] = float(pearsonr(p, y)[0])
            row[f"{k}_spearman"] = float(spearmanr(p, y)[0])
            row[f"{k}_auc"] = float(roc_auc_score(neg, -p))
        for k, p in dissatisfied.items():
            row[f"{k}_auc_dis"] = float(roc_auc_score(neg, p))
        key, _ = primary(name)
        row["primary"] = key
        row["bar_met"] = bool(
            row[f"learned_{key}"] - row[f"vader_{key}"] >= 0.05 and row[f"learned_{key}"] > row[f"lexicon_{key}"]
        )
        results.append(row)
        print(json.dumps(row), flush=True)
    print(f"largest engine/exported-model difference: {worst_parity:.2e}; vader-parity mismatches: {vader_mismatch}")
    if args.sets:
        print(table(results))
        return
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "external.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "external.md").write_text(table(results))
    print(table(results))


def table(results: list[dict]) -> str:
    lines = [
        "| set | role | kind | n (negative) | metric | VADER | lexicon engine | first learned (linear) "
        "| second learned | third learned | third − VADER | third − second | bar | VADER on original text |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        key, label = primary(r["set"])
        metrics = [(key, label + " ★")]
        others = [("spearman", "Spearman"), ("pearson", "Pearson"), ("auc", "AUC negative (valence)")]
        if r["set"] in SATISFACTION:
            others[2] = ("auc", "AUC dissatisfied (valence)")
        metrics += [m for m in others if m[0] != key]
        for k, lab in metrics:
            v, lx, li, se, le = (r[f"{e}_{k}"] for e in ENGINES)
            vo = r.get(f"vader_orig_{k}")
            bar = ("met" if r["bar_met"] else "**missed**") if k == key else ""
            lines.append(
                f"| {r['set']} | {r['role'] if k == key else ''} | {r['kind'] if k == key else ''} | "
                f"{r['n']} ({r['negative']}) | {lab} | {v:.3f} | {lx:.3f} | {li:.3f} | {se:.3f} | {le:.3f} | {le - v:+.3f} | {le - se:+.3f} | {bar} | "
                f"{'' if vo is None else f'{vo:.3f}'} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
