"""The labelled data sets: where each file comes from, its licence, its role,
and a loader that turns it into utterances in speech-recognition form.

Every file is pinned by repository, commit, path and SHA-256. `DATA` (default
`train/data/`, or `$IVRX_TRAIN_DATA`) holds them as `OWNER/REPO/PATH`; the
README says how to fetch them. Roles:

- `train`: openly licensed without a non-commercial or share-alike clause;
  the committed weights are trained on these only.
- `eval`: never trained on; used only to measure (several have licences that
  allow evaluation but not shipping a model trained on them).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(os.environ.get("IVRX_TRAIN_DATA", Path(__file__).parent / "data"))


@dataclass(frozen=True)
class Source:
    repo: str
    commit: str
    path: str
    sha256: str
    licence: str

    def file(self) -> Path:
        return DATA / self.repo / self.path

    def read_bytes(self) -> bytes:
        f = self.file()
        if not f.exists():
            raise SystemExit(f"missing {f}: fetch {self.repo} at {self.commit} (see train/README.md)")
        data = f.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise SystemExit(f"{f}: SHA-256 {digest}, expected {self.sha256} ({self.repo} at {self.commit})")
        return data

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")


GOEMOTIONS = "monologg/GoEmotions-pytorch", "b75f9d3a8b76bc1060687925b04ca98a1b8ea66b"
XED = "Helsinki-NLP/XED", "76666d251f147cf518071bef4f8415dab6b96115"
VADER = "cjhutto/vaderSentiment", "44fc044cd877310ee8278a0eadf34bcd50d41d06"
EMOBANK = "JULIELab/EmoBank", "248ce2a43e165a66d31aeaed83cff9641d6654e0"
MELD = "declare-lab/MELD", "2d2011b409d3ca2d7e94460cd007d434b1d0a102"
USS = "sunnweiwei/user-satisfaction-simulation", "8ba06bd92570fd94d3ec0cb828aad45172be71b2"
# A copy of UCI's "Sentiment Labelled Sentences" (Kotzias et al.,
# KDD 2015; UCI dataset 331, CC-BY-4.0): 1000 sentences each from Amazon
# phone reviews and Yelp, 990 from IMDB, positive or negative.
UCI = "Sudarshan-gurav/NLP", "915886f7804d6fd224159805b915a14e510cf0cc"
CC_BY_UCI = "CC-BY-4.0 (UCI Machine Learning Repository, dataset 331)"

APACHE_GOEMOTIONS = "Apache-2.0 (GoEmotions, google-research; copied verbatim by this repository, also Apache-2.0)"

SOURCES: dict[str, Source] = {
    "goemotions_train": Source(*GOEMOTIONS, "data/original/train.tsv", "1c254a142be5c00e80d819b9ae1bbd36d94b2eeb8f4b1271846508d57e57d9c5", APACHE_GOEMOTIONS),
    "goemotions_dev": Source(*GOEMOTIONS, "data/original/dev.tsv", "575489c079c9de1097062a01738f998590d6b7ead66dd1c9fd1d2ba01fd8bc62", APACHE_GOEMOTIONS),
    "goemotions_test": Source(*GOEMOTIONS, "data/original/test.tsv", "0587b2dd8b27b97352adbfc3fb083d46005c8946657fdc2b1ca8b1cc7f1f8be4", APACHE_GOEMOTIONS),
    "goemotions_labels": Source(*GOEMOTIONS, "data/original/labels.txt", "45c3ef86782d2a4d7fedcd6d8c111aa0d0e94720689bd164fac94fefb4495a89", APACHE_GOEMOTIONS),
    "xed": Source(*XED, "AnnotatedData/en-annotated.tsv", "26ac0254fbdb8b09cf2b00d44041d9084ece31bd200ae7c0e0662fbd8b037d98", "CC-BY-4.0"),
    "xed_neutral": Source(*XED, "AnnotatedData/neu_en.txt", "6e8b38af83b80fb64ec1139007973b1f09ec16d48549e82de22423cdba259f08", "CC-BY-4.0"),
    "uci_amazon": Source(*UCI, "amazon_cells_labelled.txt", "16b1872aba98fb5f40e21ac76fc57615058010bba6c9388d101ec415995b638d", CC_BY_UCI),
    "uci_imdb": Source(*UCI, "imdb_labelled.txt", "a42450a6f0b2af9bd3738ca2a9af355678e90e5a0f8b83f849d60b59235faaa7", CC_BY_UCI),
    "uci_yelp": Source(*UCI, "yelp_labelled.txt", "b1428e7e7452834f99401a1be3cc6abc778f92c1c8a12cad9adac2add9e714b3", CC_BY_UCI),
    "vader": Source(*VADER, "additional_resources/hutto_ICWSM_2014.tar.gz", "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa", "MIT"),
    "emobank": Source(*EMOBANK, "corpus/emobank.csv", "1ade4a4a453e880c0f39d0536d2b355e8a716e0cf88236c64cdb4d438cf9605b", "CC-BY-SA-4.0"),
    "meld_test": Source(*MELD, "data/MELD/test_sent_emo.csv", "8d37103938f7067600839fe29d5a114a6cd1bcdafb75bec101e06464c5006888", "GPL-3.0"),
    "uss_sgd": Source(*USS, "dataset/SGD.txt", "f417e17e39221a396a041bd10bee4f3e221a5834d2e32dcc7f813adb25d3bf39", "none stated (dialogues: SGD, CC-BY-SA-4.0)"),
    "uss_mwoz": Source(*USS, "dataset/MWOZ.txt", "32b654c702828bbcef0d9b7b63c096c1b464037a2c4f957cf3d7ec620c6170c8", "none stated (dialogues: MultiWOZ, MIT)"),
    "uss_redial": Source(*USS, "dataset/ReDial.txt", "b875bc656ed2e7ca12dfd966e026b2393f86e6915e8fdaf1e287ac2eb1c1b0f2", "none stated (dialogues: ReDial, CC-BY-4.0)"),
    "uss_ccpe": Source(*USS, "dataset/CCPE.txt", "ee6e268f85a7fd25acfa97cf1c5bb9b8c8e86f20dff096535dd46296a036bba9", "none stated (dialogues: CCPE-M, CC-BY-SA-4.0)"),
}

_APOSTROPHES = re.compile("['\u2019\u2018`\u00b4\u02bc]")
_PLACEHOLDER = re.compile(r"\[(NAME|RELIGION|PERSON)\]")


def asr_form(text: str) -> str:
    """Text as speech recognition prints it: lower case, apostrophes dropped,
    every other non-alphanumeric character a word break (as in ivrx's
    normaliser's first stage). Anonymisation placeholders are dropped."""
    text = _PLACEHOLDER.sub(" ", text)
    text = _APOSTROPHES.sub("", text.lower())
    text = "".join(c if c.isalnum() else " " for c in text)
    return " ".join(text.split())


@dataclass
class Example:
    text: str  # as published
    valence: float | None = None  # -1..1 target, or a continuous human rating
    negative: int | None = None  # 1 for the negative / dissatisfied class
    dissatisfied: int | None = None  # 1 for anger, annoyance, disappointment, disapproval, disgust
    group: str = ""  # split key
    extra: dict = field(default_factory=dict)

    @property
    def asr(self) -> str:
        return asr_form(self.text)


# ---------------------------------------------------------------- training

GOEMOTIONS_POSITIVE = {
    "amusement", "excitement", "joy", "love", "desire", "optimism", "caring", "pride", "admiration", "gratitude",
    "relief", "approval",
}
GOEMOTIONS_NEGATIVE = {
    "fear", "nervousness", "remorse", "embarrassment", "disappointment", "sadness", "grief", "disgust", "anger",
    "annoyance", "disapproval",
}
# GoEmotions' own grouping (goemotions/data/sentiment_dict.json); the rest
# (realization, surprise, curiosity, confusion, neutral) count as 0.
DISSATISFIED = {"anger", "annoyance", "disappointment", "disapproval", "disgust"}


def goemotions(split: str) -> list[Example]:
    labels = SOURCES["goemotions_labels"].read_text().split()
    out = []
    for row in SOURCES[f"goemotions_{split}"].read_text().splitlines():
        text, ids, _ = row.split("\t")
        names = [labels[int(i)] for i in ids.split(",")]
        v = sum(1 if n in GOEMOTIONS_POSITIVE else -1 if n in GOEMOTIONS_NEGATIVE else 0 for n in names) / len(names)
        neg = int(any(n in GOEMOTIONS_NEGATIVE for n in names) and not any(n in GOEMOTIONS_POSITIVE for n in names))
        out.append(
            Example(text, v, neg, int(any(n in DISSATISFIED for n in names)), f"goemotions_{split}", {"emotions": names})
        )
    return out


XED_LABELS = {1: "anger", 2: "anticipation", 3: "disgust", 4: "fear", 5: "joy", 6: "sadness", 7: "surprise", 8: "trust"}
XED_NEGATIVE = {"anger", "disgust", "fear", "sadness"}
XED_POSITIVE = {"joy", "trust"}


def _split_of(text: str) -> str:
    h = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 10
    return "test" if h == 0 else "dev" if h == 1 else "train"


def xed() -> list[Example]:
    out = []
    for row in SOURCES["xed"].read_text().splitlines():
        if "\t" not in row:
            continue
        text, ids = row.rsplit("\t", 1)
        names = [XED_LABELS[int(i)] for i in ids.replace(" ", "").split(",") if i]
        v = sum(1 if n in XED_POSITIVE else -1 if n in XED_NEGATIVE else 0 for n in names) / len(names)
        neg = int(any(n in XED_NEGATIVE for n in names) and not any(n in XED_POSITIVE for n in names))
        dis = int(any(n in ("anger", "disgust") for n in names))
        out.append(Example(text, v, neg, dis, f"xed_{_split_of(text)}", {"emotions": names}))
    for row in SOURCES["xed_neutral"].read_text().splitlines():
        if "\t" not in row:
            continue
        _, text = row.split("\t", 1)
        out.append(Example(text, 0.0, 0, 0, f"xed_{_split_of(text)}", {"emotions": ["neutral"]}))
    return out


def uci_sentences() -> list[Example]:
    """UCI's labelled review sentences (valence only: no emotion labels, so
    no dissatisfaction label). A sentence whose speech-recognition form
    equals an utterance of any evaluation set is dropped."""
    seen = {e.asr for rows in evaluation_sets().values() for e in rows}
    out = []
    for key in ("uci_amazon", "uci_imdb", "uci_yelp"):
        for row in SOURCES[key].read_bytes().decode("latin-1").splitlines():
            if "\t" not in row:
                continue
            text, label = row.rsplit("\t", 1)
            text = text.strip().strip('"').strip()
            ex = Example(text, 1.0 if label.strip() == "1" else -1.0, int(label.strip() == "0"), None)
            if ex.asr and ex.asr not in seen:
                ex.group = f"uci_{_split_of(text)}"
                out.append(ex)
    return out


def training_sets(uci: bool = False) -> list[Example]:
    """Everything the weights may be trained on, with its split in `group`."""
    return goemotions("train") + goemotions("dev") + goemotions("test") + xed() + (uci_sentences() if uci else [])


# -------------------------------------------------------------- evaluation


def vader_sets() -> dict[str, list[Example]]:
    """VADER's four human-rated sets (mean of 20 raters, -4..4)."""
    data = SOURCES["vader"].read_bytes()
    names = {
        "tweets": "tweets_GroundTruth.txt",
        "movie_reviews": "movieReviewSnippets_GroundTruth.txt",
        "amazon_reviews": "amazonReviewSnippets_GroundTruth.txt",
        "nyt_editorials": "nytEditorialSnippets_GroundTruth.txt",
    }
    out: dict[str, list[Example]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for key, name in names.items():
            raw = tar.extractfile(f"hutto_ICWSM_2014/{name}").read().decode("utf-8", errors="replace")
            rows = []
            for line in raw.splitlines():
                parts = line.split("\t")
                if len(parts) < 3:
                    continue
                rating = float(parts[1])
                rows.append(Example("\t".join(parts[2:]), rating, int(rating < 0), None, key))
            out[key] = rows
    return out


def emobank() -> list[Example]:
    """EmoBank: valence 1..5 (mean of 5 raters), news, blogs, letters, fiction."""
    out = []
    for row in csv.DictReader(io.StringIO(SOURCES["emobank"].read_text())):
        v = float(row["V"])
        out.append(Example(row["text"], v, int(v < 2.5), None, "emobank"))
    return out


def meld() -> list[Example]:
    """MELD test split: Friends dialogue utterances, sentiment and emotion."""
    out = []
    for row in csv.DictReader(io.StringIO(SOURCES["meld_test"].read_text())):
        s = row["Sentiment"]
        v = {"positive": 1.0, "neutral": 0.0, "negative": -1.0}[s]
        out.append(
            Example(row["Utterance"], v, int(s == "negative"), int(row["Emotion"] in ("anger", "disgust")), "meld")
        )
    return out


def uss(name: str) -> list[Example]:
    """User turns of a task-oriented dialogue set with turn-level user
    satisfaction (1..5, several raters): the rating's mean, and dissatisfied
    when it rounds to 2 or less."""
    out = []
    for line in SOURCES[f"uss_{name}"].read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or parts[0] != "USER" or parts[1] == "OVERALL" or not parts[3].strip():
            continue
        ratings = [int(x) for x in parts[3].split(",") if x.strip()]
        m = sum(ratings) / len(ratings)
        out.append(Example(parts[1], m, int(m <= 2.5), int(m <= 2.5), f"uss_{name}"))
    return out


def evaluation_sets() -> dict[str, list[Example]]:
    """Every external set, none of which the weights are trained on."""
    sets = {}
    for name in ("sgd", "mwoz", "redial", "ccpe"):
        sets[f"uss_{name}"] = uss(name)
    sets["meld"] = meld()
    sets["emobank"] = emobank()
    sets.update(vader_sets())
    return sets
