"""The learned scorer's features, fit and export.

An utterance of n normalised tokens scores, on VADER's valence scale,

    s = expand(lexicon) + dead((sum_i w[token_i, negated_i] + sum_j w[bigram_j]) / sqrt(n), d)

and its valence is VADER's squash s / sqrt(s^2 + 15), in -1..1. `lexicon` is
the existing lexicon engine's score (VADER plus the contact-centre lexicon,
negation, "but" and sarcasm rules) and `expand` undoes the squash. The
lexicon keeps its full weight and the learned part only adds to it, so the
policy's thresholds keep their meaning; tokens inside a contact-centre phrase
the lexicon matched are left to the lexicon, as are bigrams touching them.
A bias absorbs the training sets' base rate during the fit and is not
shipped: neutral text stays at the lexicon's neutral point. Word weights are
soft-thresholded at export, so words with no clear valence weigh exactly 0,
and the learned sum passes a dead zone `d` (moved toward 0 by d, stopping at
0), so it only speaks when its evidence is clear. Each
word's weight is `embedding(word) . u + r[word]` (`u'`, `r'` when a negator
reaches the word): the embedding is all-MiniLM-L6-v2's sentence embedding of
the word alone, so words never seen in the labelled data still get a weight
from words like them, and `r` is a small per-word correction where the data
has the word. Bigrams seen in training get their own weight. A second head of
the same form, through a logistic, gives the probability that the utterance
is dissatisfied (anger, annoyance, disappointment, disapproval, disgust).

Because everything is linear in the per-token weights, the export folds the
embeddings away: the engine ships one table of words and bigrams with four
numbers each, not the embeddings.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse as sp

ALPHA = 15.0
MAGIC = b"IVRXLRN1"


def expand(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, -0.9999, 0.9999)
    return c * np.sqrt(ALPHA / (1.0 - c * c))


def squash(s: np.ndarray) -> np.ndarray:
    return s / np.sqrt(s * s + ALPHA)


def bigrams(tokens: list[str]) -> list[str]:
    return [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


def free_bigrams(s) -> list[str]:
    """Bigrams of adjacent tokens neither of which a domain phrase covers."""
    return [
        f"{s.tokens[i - 1]} {s.tokens[i]}"
        for i in range(1, len(s.tokens))
        if not s.covered[i] and not s.covered[i - 1]
    ]


@dataclass
class Vocab:
    words: list[str]  # every word with an embedding
    embeddings: np.ndarray  # len(words) x 384
    residual_words: list[str]  # words with a per-word correction
    bigrams: list[str]


def build_counts(scored, vocab: Vocab):
    """Sparse token-count matrices, each row divided by sqrt(n)."""
    windex = {w: i for i, w in enumerate(vocab.words)}
    rindex = {w: i for i, w in enumerate(vocab.residual_words)}
    bindex = {b: i for i, b in enumerate(vocab.bigrams)}
    rows = {k: ([], [], []) for k in ("ep", "en", "rp", "rn", "bg")}

    def add(key, r, c, v):
        rows[key][0].append(r)
        rows[key][1].append(c)
        rows[key][2].append(v)

    for r, s in enumerate(scored):
        n = len(s.tokens)
        if n == 0:
            continue
        scale = 1.0 / math.sqrt(n)
        for t, neg, cov in zip(s.tokens, s.negated, s.covered):
            if cov:
                continue
            if t in windex:
                add("en" if neg else "ep", r, windex[t], scale)
            if t in rindex:
                add("rn" if neg else "rp", r, rindex[t], scale)
        for b in free_bigrams(s):
            if b in bindex:
                add("bg", r, bindex[b], scale)
    n = len(scored)
    shapes = {"ep": len(vocab.words), "en": len(vocab.words), "rp": len(vocab.residual_words),
              "rn": len(vocab.residual_words), "bg": len(vocab.bigrams)}
    return {k: sp.csr_matrix((v[2], (v[0], v[1])), shape=(n, shapes[k]), dtype=np.float64) for k, v in rows.items()}


@dataclass
class Params:
    lam_u: float = 1e-6  # on the embedding projections
    lam_r: float = 3e-5  # on the per-word corrections
    lam_b: float = 3e-5  # on the bigram weights


class Design:
    """The feature matrix [expand(lexicon), 1, E+, E-, R+, R-, B]."""

    def __init__(self, scored, vocab: Vocab) -> None:
        c = build_counts(scored, vocab)
        emb = vocab.embeddings.astype(np.float64)
        lex = expand(np.array([s.lexicon for s in scored]))
        self.dense = np.hstack([lex[:, None], np.ones((len(scored), 1)), c["ep"] @ emb, c["en"] @ emb])
        self.sparse = sp.hstack([c["rp"], c["rn"], c["bg"]]).tocsr()
        self.dims = (emb.shape[1], len(vocab.residual_words), len(vocab.bigrams))

    @property
    def width(self) -> int:
        return self.dense.shape[1] + self.sparse.shape[1]

    def dot(self, w: np.ndarray) -> np.ndarray:
        d = self.dense.shape[1]
        return self.dense @ w[:d] + self.sparse @ w[d:]

    def tdot(self, g: np.ndarray) -> np.ndarray:
        return np.concatenate([self.dense.T @ g, self.sparse.T @ g])

    def penalty(self, p: Params) -> np.ndarray:
        e, r, b = self.dims
        return np.concatenate([[0.0, 0.0], np.full(2 * e, p.lam_u), np.full(2 * r, p.lam_r), np.full(b, p.lam_b)])


def fit(design: Design, y: np.ndarray, params: Params, kind: str, weight: np.ndarray | None = None) -> np.ndarray:
    """Fits the valence head (`kind="valence"`, squared error through the
    squash) or the dissatisfaction head (`kind="logistic"`)."""
    lam = design.penalty(params)
    n = len(y)
    wt = np.ones(n) if weight is None else weight
    wt = wt / wt.sum()

    def f(w):
        s = design.dot(w)
        if kind == "valence":
            q = np.sqrt(s * s + ALPHA)
            pred = s / q
            err = pred - y
            loss = (wt * err * err).sum()
            grad_s = 2 * wt * err * ALPHA / q**3
        else:
            p = 1.0 / (1.0 + np.exp(-s))
            eps = 1e-12
            loss = -(wt * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).sum()
            grad_s = wt * (p - y)
        return loss + (lam * w * w).sum(), design.tdot(grad_s) + 2 * lam * w

    w0 = np.zeros(design.width)
    bounds = None
    if kind == "valence":
        # The lexicon keeps its full weight: s = expand(lexicon) + learned part.
        w0[0] = 1.0
        bounds = [(1.0, 1.0)] + [(None, None)] * (design.width - 1)
    res = scipy.optimize.minimize(f, w0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1500})
    return res.x


def predict(design: Design, w: np.ndarray, kind: str) -> np.ndarray:
    s = design.dot(w)
    return squash(s) if kind == "valence" else 1.0 / (1.0 + np.exp(-s))


def token_weights(vocab: Vocab, w: np.ndarray) -> dict[str, tuple[float, float]]:
    """Folds a head's weights into (plain, negated) weights per word or bigram."""
    e, r, b = len(vocab.embeddings[0]), len(vocab.residual_words), len(vocab.bigrams)
    emb = vocab.embeddings.astype(np.float64)
    up, un = w[2 : 2 + e], w[2 + e : 2 + 2 * e]
    rp, rn = w[2 + 2 * e : 2 + 2 * e + r], w[2 + 2 * e + r : 2 + 2 * e + 2 * r]
    bw = w[2 + 2 * e + 2 * r :]
    plain = emb @ up
    neg = emb @ un
    out = {word: [plain[i], neg[i]] for i, word in enumerate(vocab.words)}
    for i, word in enumerate(vocab.residual_words):
        out.setdefault(word, [0.0, 0.0])
        out[word][0] += rp[i]
        out[word][1] += rn[i]
    for i, bg in enumerate(vocab.bigrams):
        out[bg] = [bw[i], bw[i]]
    return {k: (float(v[0]), float(v[1])) for k, v in out.items()}


# ------------------------------------------------------------------ export


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def soft_threshold(weights: dict[str, tuple[float, float]], tau: float) -> dict[str, tuple[float, float]]:
    def shrink(x: float) -> float:
        return math.copysign(max(abs(x) - tau, 0.0), x)

    return {k: (shrink(a), shrink(b)) for k, (a, b) in weights.items()}


def quantise(val: dict, dis: dict, keep) -> tuple[float, float, list[tuple[str, list[int]]]]:
    """Valence and dissatisfaction weights per key as 16-bit integers:
    (valence scale, dissatisfaction scale, [(key, [valence plain, negated,
    dissatisfied plain, negated])]) for the keys `keep(key, weights)` keeps
    (keys of 64 KiB or more never)."""
    keys = sorted(set(val) | set(dis))
    vmax = max(max(abs(x) for x in val.get(k, (0, 0))) for k in keys)
    dmax = max(max(abs(x) for x in dis.get(k, (0, 0))) for k in keys)
    vscale = 32767.0 / vmax
    dscale = 32767.0 / dmax
    entries = []
    for k in keys:
        q = [round(x * vscale) for x in val.get(k, (0.0, 0.0))] + [round(x * dscale) for x in dis.get(k, (0.0, 0.0))]
        if keep(k, q) and len(k.encode()) < 1 << 16:
            entries.append((k, q))
    return vscale, dscale, entries


def open_addressing(keys: list[str]) -> list[int]:
    """The slot table over `keys` (entry index + 1, or 0): a power of two at
    least twice the keys, FNV-1a 64 of the UTF-8 text, linear probing."""
    slots = 1
    while slots < len(keys) * 2:
        slots *= 2
    table = [0] * slots
    for i, k in enumerate(keys):
        h = fnv1a(k.encode()) & (slots - 1)
        while table[h]:
            h = (h + 1) & (slots - 1)
        table[h] = i + 1
    return table


def export(valence_w: np.ndarray, dissatisfied_w: np.ndarray, vocab: Vocab, tau: float = 0.0, dead: float = 0.0) -> bytes:
    """The first model's weights file (`benches/learned-v1.bin`; the engine reads it, see
    crates/intel/src/learned.rs).

    Layout, little-endian:
      magic "IVRXLRN1"; u32 entries; u32 slots (a power of two); u32 text bytes;
      f32 x 7: valence lexicon weight, valence bias, dissatisfied lexicon
      weight, dissatisfied bias, valence scale, dissatisfied scale, valence
      dead zone;
      per entry: u32 text offset, u16 text length, i16 x 4 (valence plain,
      valence negated, dissatisfied plain, dissatisfied negated, each times
      its scale); u32 x slots: entry index + 1, or 0 (open addressing, FNV-1a
      64 of the text, linear probing); the texts, UTF-8.
    """
    val = soft_threshold(token_weights(vocab, valence_w), tau)
    dis = token_weights(vocab, dissatisfied_w)
    vscale, dscale, entries = quantise(val, dis, lambda k, q: any(q))
    table = open_addressing([k for k, _ in entries])
    slots = len(table)
    text = bytearray()
    body = bytearray()
    for k, q in entries:
        kb = k.encode()
        body += struct.pack("<IH4h", len(text), len(kb), *q)
        text += kb
    head = MAGIC + struct.pack(
        # The valence bias only absorbed the training sets' base rate: not shipped.
        "<III7f", len(entries), slots, len(text), valence_w[0], 0.0, dissatisfied_w[0], dissatisfied_w[1],
        vscale, dscale, dead,
    )
    return bytes(head + body + struct.pack(f"<{slots}I", *table) + text)


def count_tokens(scored) -> tuple[Counter, Counter]:
    words, pairs = Counter(), Counter()
    for s in scored:
        words.update(s.tokens)
        pairs.update(bigrams(s.tokens))
    return words, pairs


def word_sums(s, table: dict[str, tuple[int, int, int, int]]) -> tuple[int, int, int]:
    """(valence sum, dissatisfaction sum, free words found) of one
    `engine.Scored` row over a table of (valence plain, negated, dissatisfied
    plain, negated) integers: free words by their negation, then free
    bigrams, as the engine adds them."""
    tokens, negated, covered = s.tokens, s.negated, s.covered
    v = d = known = 0
    for i, (t, neg) in enumerate(zip(tokens, negated)):
        if covered[i]:
            continue
        e = table.get(t)
        if e:
            known += 1
            v += e[1] if neg else e[0]
            d += e[3] if neg else e[2]
        if i > 0 and not covered[i - 1]:
            e = table.get(f"{tokens[i - 1]} {t}")
            if e:
                v += e[0]
                d += e[2]
    return v, d, known


class Exported:
    """Reads a weights file and scores like the Rust engine (for checking
    that the engine reproduces the trained model)."""

    def __init__(self, blob: bytes) -> None:
        if blob[:8] != MAGIC:
            raise ValueError("not a weights file")
        n, slots, _ = struct.unpack_from("<III", blob, 8)
        self.a_v, self.b_v, self.a_d, self.b_d, self.vscale, self.dscale, self.dead = struct.unpack_from(
            "<7f", blob, 20
        )
        head = 8 + 12 + 28
        body = blob[head : head + n * 14]
        text = blob[head + n * 14 + slots * 4 :]
        self.table = {}
        for i in range(n):
            off, ln, vp, vn, dp, dn = struct.unpack_from("<IH4h", body, i * 14)
            self.table[text[off : off + ln].decode()] = (vp, vn, dp, dn)

    def score(self, s) -> tuple[float, float]:
        """(valence, dissatisfied) for one `engine.Scored` row."""
        tokens, lexicon = s.tokens, s.lexicon
        v, d, _ = word_sums(s, self.table)
        per = 1.0 / math.sqrt(len(tokens)) if tokens else 0.0
        lex = float(expand(np.array(lexicon)))
        learned = v / self.vscale * per
        learned = math.copysign(max(abs(learned) - self.dead, 0.0), learned)
        sv = self.a_v * lex + self.b_v + learned
        sd = self.a_d * lex + self.b_d + d / self.dscale * per
        return float(squash(np.array(sv))), 1.0 / (1.0 + math.exp(-sd))
