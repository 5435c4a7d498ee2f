"""The second learned model: the linear word and bigram table of `model.py`
plus a small non-linear head over static word embeddings.

For an utterance of n normalised tokens, on VADER's valence scale:

    pooled+ = sum of E[token] over free tokens no negator reaches, / n
    pooled- = sum of E[token] over negated free tokens, / n
    x = [pooled+, pooled-, expand(lexicon) / 4, lexicon]
    h = relu(A x + c)
    s = expand(lexicon) + dead(wide_v / sqrt(n) + g v . h + o, d)
    valence = s / sqrt(s^2 + 15)
    dissatisfied = logistic(a expand(lexicon) + b + wide_d / sqrt(n) + u . h)

`wide` is the linear word and bigram sum of `model.py`, retrained together
with the head. Free tokens are those outside every contact-centre phrase the
lexicon matched: the phrases are left to the lexicon (bigrams touching them
too), and `g` is 0 when any phrase matched, so there the head does not
temper the lexicon's judgement ("oh great another hour on hold" stays
sarcastic), and 1 otherwise. `E` is a static embedding
table: all-MiniLM-L6-v2's embedding of each word alone, reduced by PCA to K
dimensions and quantised to int8 per dimension. The fit's valence bias
absorbs the training sets' base rate and is not shipped; instead `o` puts
the learned valence of the median neutral training utterance at 0, so plain
text sits at the lexicon's neutral point, and an utterance none of whose
free words the table knows gets no learned valence at all.

Training minimises squared error through the squash (valence) plus log loss
(dissatisfaction) with L2 penalties, full batch, by L-BFGS from a seeded
start, so a retrain on the same data and library versions gives the same
weights.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import scipy.optimize
import scipy.sparse as sp

import model

MAGIC2 = b"IVRXLRN2"


def pca_table(emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings reduced to `k` principal dimensions and quantised:
    (int8 table, per-dimension scale)."""
    x = emb.astype(np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    # Fix each component's sign (its largest loading positive), so the table
    # does not depend on the SVD routine's choice.
    vt = vt[:k]
    vt = vt * np.sign(vt[np.arange(k), np.abs(vt).argmax(1)])[:, None]
    p = x @ vt.T
    scale = np.abs(p).max(0) / 127.0
    q = np.clip(np.round(p / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def pool_counts(scored, words: list[str], include_covered: bool) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(plain, negated) token-count matrices over `words`, rows divided by n."""
    index = {w: i for i, w in enumerate(words)}
    rows = {True: ([], [], []), False: ([], [], [])}
    for r, s in enumerate(scored):
        n = len(s.tokens)
        for t, neg, cov in zip(s.tokens, s.negated, s.covered):
            if cov and not include_covered:
                continue
            i = index.get(t)
            if i is not None:
                rr, cc, vv = rows[neg]
                rr.append(r)
                cc.append(i)
                vv.append(1.0 / n)
    shape = (len(scored), len(words))
    return tuple(
        sp.csr_matrix((rows[k][2], (rows[k][0], rows[k][1])), shape=shape, dtype=np.float64) for k in (False, True)
    )


class Inputs:
    """The head's inputs and the wide part's design for a set of utterances."""

    def __init__(
        self, scored, vocab: model.Vocab, table: np.ndarray, scale: np.ndarray, include_covered: bool, gate: bool
    ):
        self.wide = model.Design(scored, vocab)
        # 0 where the head's valence is silenced: a contact-centre phrase of
        # the lexicon matched (when `gate`).
        self.gate = np.array([0.0 if gate and any(s.covered) else 1.0 for s in scored])
        plain, neg = pool_counts(scored, vocab.words, include_covered)
        e = table.astype(np.float64) * scale.astype(np.float64)
        lex = np.array([s.lexicon for s in scored])
        self.lex_expanded = model.expand(lex)
        self.x = np.hstack([plain @ e, neg @ e, self.lex_expanded[:, None] / 4.0, lex[:, None]])

    def rows(self, mask: np.ndarray) -> "Inputs":
        out = Inputs.__new__(Inputs)
        d = model.Design.__new__(model.Design)
        d.dense, d.sparse, d.dims = self.wide.dense[mask], self.wide.sparse[mask], self.wide.dims
        out.wide, out.x, out.lex_expanded, out.gate = d, self.x[mask], self.lex_expanded[mask], self.gate[mask]
        return out


class Net:
    """Parameters of both heads, packed in one vector for L-BFGS."""

    def __init__(self, width: int, inputs: int, hidden: int) -> None:
        self.width, self.m, self.h = width, inputs, hidden
        self.sizes = [("wv", width), ("wd", width), ("A", inputs * hidden), ("c", hidden), ("V", hidden * 2)]

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        out, at = {}, 0
        for name, size in self.sizes:
            out[name] = theta[at : at + size]
            at += size
        out["A"] = out["A"].reshape(self.m, self.h)
        out["V"] = out["V"].reshape(self.h, 2)
        return out

    @property
    def size(self) -> int:
        return sum(s for _, s in self.sizes)


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = x.mean(0)
    sd = x.std(0) + 1e-6
    return mu, sd


def forward(net: Net, p: dict, inp: Inputs, mu: np.ndarray, sd: np.ndarray):
    z = (inp.x - mu) / sd
    pre = z @ p["A"] + p["c"]
    h = np.maximum(pre, 0.0)
    head = h @ p["V"]
    sv = inp.wide.dot(p["wv"]) + head[:, 0] * inp.gate
    sd_ = inp.wide.dot(p["wd"]) + head[:, 1]
    return z, pre, h, sv, sd_


def fit(
    inp: Inputs,
    y_val: np.ndarray,
    y_dis: np.ndarray,
    hidden: int,
    params: model.Params,
    lam_head: float,
    dis_weight: float,
    iters: int,
    seed: int = 0,
    callback=None,
    val_weight: float = 1.0,
    lexicon_inputs: bool = True,
):
    """Fits both heads together (or one, with the other's weight 0). With
    `lexicon_inputs` false the hidden units do not read the lexicon score
    (their first-layer weights from it stay 0), so the head only adds the
    evidence of the words. Returns (net, theta, mu, sd)."""
    net = Net(inp.wide.width, inp.x.shape[1], hidden)
    mu, sd = standardise(inp.x)
    rng = np.random.default_rng(seed)
    theta0 = np.zeros(net.size)
    p0 = net.unpack(theta0)
    p0["wv"][0] = 1.0  # the lexicon keeps its full weight
    p0["A"][:] = rng.normal(0.0, math.sqrt(2.0 / net.m), size=(net.m, hidden))
    if not lexicon_inputs:
        p0["A"][-2:] = 0.0
    p0["V"][:] = rng.normal(0.0, 0.01, size=(hidden, 2))
    lam_wide = inp.wide.penalty(params)
    n = len(y_val)

    def f(theta):
        p = net.unpack(theta)
        z, pre, h, sv, sdis = forward(net, p, inp, mu, sd)
        q = np.sqrt(sv * sv + model.ALPHA)
        err = sv / q - y_val
        loss_v = (err * err).sum() / n
        g_sv = val_weight * 2 * err * model.ALPHA / q**3 / n
        pr = 1.0 / (1.0 + np.exp(-sdis))
        eps = 1e-12
        loss_d = -(y_dis * np.log(pr + eps) + (1 - y_dis) * np.log(1 - pr + eps)).sum() / n
        g_sd = dis_weight * (pr - y_dis) / n
        g = {}
        g["wv"] = inp.wide.tdot(g_sv) + 2 * lam_wide * p["wv"]
        g["wd"] = inp.wide.tdot(g_sd) + 2 * lam_wide * p["wd"]
        g_head = np.stack([g_sv * inp.gate, g_sd], 1)
        g["V"] = h.T @ g_head + 2 * lam_head * p["V"]
        g_h = (g_head @ p["V"].T) * (pre > 0)
        g["A"] = z.T @ g_h + 2 * lam_head * p["A"]
        g["c"] = g_h.sum(0)
        loss = (
            val_weight * loss_v
            + dis_weight * loss_d
            + (lam_wide * p["wv"] ** 2).sum()
            + (lam_wide * p["wd"] ** 2).sum()
            + lam_head * ((p["A"] ** 2).sum() + (p["V"] ** 2).sum())
        )
        grad = np.concatenate([g[name].ravel() for name, _ in net.sizes])
        return loss, grad

    bounds = [(None, None)] * net.size
    bounds[0] = (1.0, 1.0)
    if not lexicon_inputs:
        a_at = 2 * net.width + (net.m - 2) * hidden
        bounds[a_at : a_at + 2 * hidden] = [(0.0, 0.0)] * (2 * hidden)
    res = scipy.optimize.minimize(
        f,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": iters, "maxfun": iters * 2},
        callback=None if callback is None else (lambda theta: callback(net, theta, mu, sd)),
    )
    return net, res.x, mu, sd


def combine(valence_fit, dissatisfied_fit):
    """One net whose hidden layer is the valence fit's units then the
    dissatisfaction fit's, each output reading only its own units: two heads
    trained apart (each with its own regularisation and stopping point),
    evaluated as one."""
    nv, tv, muv, sdv = valence_fit
    nd, td, mud, sdd = dissatisfied_fit
    pv, pd = nv.unpack(tv), nd.unpack(td)
    both = Net(nv.width, nv.m, nv.h + nd.h)
    theta = np.zeros(both.size)
    p = both.unpack(theta)
    p["wv"][:] = pv["wv"]
    p["wd"][:] = pd["wd"]
    # Inputs are standardised with the same mean and deviation in both fits
    # (same rows); fold any difference into the first layer anyway.
    p["A"][:, : nv.h] = pv["A"]
    p["c"][: nv.h] = pv["c"]
    p["A"][:, nv.h :] = pd["A"] * (sdv / sdd)[:, None]
    p["c"][nv.h :] = pd["c"] + ((muv - mud) / sdd) @ pd["A"]
    p["V"][: nv.h, 0] = pv["V"][:, 0]
    p["V"][nv.h :, 1] = pd["V"][:, 1]
    return both, theta, muv, sdv


def neutral_offset(net: Net, theta: np.ndarray, inp: Inputs, mu, sd) -> float:
    """The valence offset `o` that puts the median learned valence of `inp`
    (neutral utterances) at 0."""
    p = net.unpack(theta)
    *_, sv, _ = forward(net, p, inp, mu, sd)
    raw = sv - p["wv"][0] * inp.lex_expanded - p["wv"][1]
    return -float(np.median(raw))


def predict(net: Net, theta: np.ndarray, inp: Inputs, mu, sd) -> tuple[np.ndarray, np.ndarray]:
    """(valence, dissatisfied) of the fitted model before export (bias kept)."""
    p = net.unpack(theta)
    *_, sv, sdis = forward(net, p, inp, mu, sd)
    return model.squash(sv), 1.0 / (1.0 + np.exp(-sdis))


# ------------------------------------------------------------------ export


def export(
    net: Net,
    theta: np.ndarray,
    mu: np.ndarray,
    sd: np.ndarray,
    vocab: model.Vocab,
    table: np.ndarray,
    scale: np.ndarray,
    dead: float,
    include_covered: bool,
    offset: float,
    gate: bool,
) -> bytes:
    """The weights file the Rust engine includes (crates/intel/src/learned.rs).

    Layout, little-endian:
      magic "IVRXLRN2"; u32 entries; u32 slots (a power of two); u32 text
      bytes; u32 embedding rows; u16 K; u16 hidden; u32 flags (bit 0: pool
      tokens inside lexicon phrases too; bit 1: the head's valence is
      silent when a phrase matched);
      f32 x 7: valence lexicon weight (1), valence offset, dissatisfied
      lexicon weight, dissatisfied bias, valence scale, dissatisfied scale,
      valence dead zone;
      per entry: u32 text offset, u16 text length, u16 embedding row (or
      0xFFFF), i16 x 4 (valence plain, valence negated, dissatisfied plain,
      dissatisfied negated, each times its scale);
      u32 x slots: entry index + 1, or 0 (open addressing, FNV-1a 64 of the
      text, linear probing);
      the texts, UTF-8, padded with zeros to a multiple of 4 bytes;
      i8 x rows x K: the embedding table;
      f32 x (2K + 2) x hidden: the first layer, input-major, with the
      quantisation scales and the input standardisation folded in;
      f32 x hidden: its bias; f32 x hidden x 2: the valence and
      dissatisfaction output weights, hidden-major.
    """
    p = net.unpack(theta)
    k = table.shape[1]
    m = 2 * k + 2
    # Fold the standardisation and the int8 scales into the first layer:
    # z = (x - mu) / sd, with x[:2K] = int8 sums / n times scale.
    a = p["A"] / sd[:, None]
    c = p["c"] - (mu / sd) @ p["A"]
    q_scale = np.concatenate([scale, scale, [1.0, 1.0]]).astype(np.float64)
    a_int = a * q_scale[:, None]
    vv = p["V"]

    val = model.token_weights(vocab, p["wv"])
    dis = model.token_weights(vocab, p["wd"])
    row_of = {w: i for i, w in enumerate(vocab.words)}
    # Words with an embedding are kept even when their weights round to 0.
    vscale, dscale, entries = model.quantise(val, dis, lambda kk, q: any(q) or kk in row_of)
    slot_table = model.open_addressing([kk for kk, _ in entries])
    slots = len(slot_table)
    text = bytearray()
    body = bytearray()
    for kk, q in entries:
        kb = kk.encode()
        body += struct.pack("<IHH4h", len(text), len(kb), row_of.get(kk, 0xFFFF), *q)
        text += kb
    text += b"\0" * (-len(text) % 4)
    flags = (1 if include_covered else 0) | (2 if gate else 0)
    head = MAGIC2 + struct.pack(
        "<IIIIHHI7f",
        len(entries),
        slots,
        len(text),
        table.shape[0],
        k,
        net.h,
        flags,
        1.0,
        offset,
        p["wd"][0],
        p["wd"][1],
        vscale,
        dscale,
        dead,
    )
    assert a_int.shape == (m, net.h)
    return bytes(
        head
        + body
        + struct.pack(f"<{slots}I", *slot_table)
        + text
        + table.astype(np.int8).tobytes()
        + a_int.astype("<f4").tobytes()
        + c.astype("<f4").tobytes()
        + vv.astype("<f4").tobytes()
    )


class Exported:
    """Reads an `IVRXLRN2` weights file and scores like the Rust engine, in
    float32 where the engine uses it (to check the engine against the
    trained model, and to evaluate the shipped model in Python)."""

    HEAD = 8 + 4 * 4 + 2 * 2 + 4 + 7 * 4
    ENTRY = 16

    def __init__(self, blob: bytes) -> None:
        if blob[:8] != MAGIC2:
            raise ValueError("not an IVRXLRN2 weights file")
        n, slots, text_len, rows, k, hidden, flags = struct.unpack_from("<IIIIHHI", blob, 8)
        (self.a_v, self.offset, self.a_d, self.b_d, self.vscale, self.dscale, self.dead) = struct.unpack_from(
            "<7f", blob, 8 + 24
        )
        self.include_covered = bool(flags & 1)
        self.gate = bool(flags & 2)
        at = self.HEAD
        body = blob[at : at + n * self.ENTRY]
        at += n * self.ENTRY + slots * 4
        text = blob[at : at + text_len]
        at += text_len
        self.table, self.rows = {}, {}
        for i in range(n):
            off, ln, row, vp, vn, dp, dn = struct.unpack_from("<IHH4h", body, i * self.ENTRY)
            key = text[off : off + ln].decode()
            self.table[key] = (vp, vn, dp, dn)
            if row != 0xFFFF:
                self.rows[key] = row
        self.emb = np.frombuffer(blob, dtype=np.int8, count=rows * k, offset=at).reshape(rows, k)
        at += rows * k
        m = 2 * k + 2
        self.a = np.frombuffer(blob, dtype="<f4", count=m * hidden, offset=at).reshape(m, hidden)
        at += m * hidden * 4
        self.c = np.frombuffer(blob, dtype="<f4", count=hidden, offset=at)
        at += hidden * 4
        self.v = np.frombuffer(blob, dtype="<f4", count=hidden * 2, offset=at).reshape(hidden, 2)
        at += hidden * 8
        if at != len(blob):
            raise ValueError(f"weights file has {len(blob)} bytes, layout says {at}")
        self.k, self.hidden = k, hidden

    def score(self, s) -> tuple[float, float]:
        """(valence, dissatisfied) for one `engine.Scored` row."""
        lex, learned, sd = self.parts(s)
        return self.finish(lex, learned, sd, self.dead)

    def finish(self, lex: float, learned: float, sd: float, dead: float) -> tuple[float, float]:
        """(valence, dissatisfied) from `parts`, with dead zone `dead`."""
        learned = math.copysign(max(abs(learned) - dead, 0.0), learned)
        sv = self.a_v * lex + learned
        return float(model.squash(np.array(sv))), 1.0 / (1.0 + math.exp(-sd))

    def parts(self, s) -> tuple[float, float, float]:
        """(expanded lexicon score, learned valence before the dead zone,
        dissatisfaction logit) for one `engine.Scored` row."""
        tokens, negated, covered = s.tokens, s.negated, s.covered
        v, d, known = model.word_sums(s, self.table)
        sums = np.zeros((2, self.k), dtype=np.int64)
        for t, neg, cov in zip(tokens, negated, covered):
            row = self.rows.get(t)
            if row is not None and (self.include_covered or not cov):
                sums[1 if neg else 0] += self.emb[row]
        n = len(tokens)
        per = 1.0 / math.sqrt(n) if n else 0.0
        lex = float(model.expand(np.array(s.lexicon)))
        x = np.zeros(2 * self.k + 2, dtype=np.float32)
        if n:
            x[: 2 * self.k] = sums.ravel().astype(np.float32) / np.float32(n)
        x[2 * self.k] = lex / 4.0
        x[2 * self.k + 1] = s.lexicon
        h = np.maximum(x @ self.a + self.c, np.float32(0))
        head = h @ self.v
        if self.gate and any(covered):
            head[0] = 0.0
        learned = v / self.vscale * per + float(head[0]) + self.offset if known else 0.0
        sd = self.a_d * lex + self.b_d + d / self.dscale * per + float(head[1])
        return lex, learned, sd
