"""Runs ivrx's own normaliser and scorers over utterances (the `score_lines`
example), so training and evaluation see exactly the tokens the engine sees."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).parent / "cache"


@dataclass
class Scored:
    tokens: list[str]
    negated: list[bool]
    covered: list[bool]  # inside a contact-centre phrase of the lexicon
    vader: float  # plain VADER on the line as given
    lexicon: float  # the lexicon engine (VADER + contact-centre lexicon)
    learned: float | None  # the learned engine's valence, when built with it
    dissatisfied: float | None


def _binary() -> Path:
    subprocess.run(
        ["cargo", "build", "--quiet", "--example", "score_lines"], cwd=ROOT, check=True
    )
    return ROOT / "target" / "debug" / "examples" / "score_lines"


def score(lines: list[str], tag: str = "") -> list[Scored]:
    """Scores `lines` (no newlines inside). Cached by content and binary."""
    binary = _binary()
    payload = "".join(line.replace("\n", " ") + "\n" for line in lines).encode()
    key = hashlib.sha256(payload + binary.read_bytes()).hexdigest()[:16]
    CACHE.mkdir(exist_ok=True)
    cached = CACHE / f"scored-{tag}-{key}.tsv"
    if not cached.exists():
        out = subprocess.run([str(binary)], input=payload, capture_output=True, check=True).stdout
        cached.write_bytes(out)
    rows = []
    for line in cached.read_text().split("\n")[: len(lines)]:
        f = line.split("\t")
        tokens = f[0].split(" ") if f[0] else []
        rows.append(
            Scored(
                tokens,
                [c == "1" for c in f[1]],
                [c == "1" for c in f[2]],
                float(f[3]),
                float(f[4]),
                float(f[5]),
                float(f[6]),
            )
        )
    if len(rows) != len(lines):
        raise RuntimeError(f"score_lines gave {len(rows)} rows for {len(lines)} lines")
    return rows
