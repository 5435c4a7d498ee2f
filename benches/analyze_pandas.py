"""pandas baseline for benches/analyze_vs_pandas.sh.

Usage: analyze_pandas.py CALLS.csv STORE.db IVRX.json

(a) The across-call aggregation from the per-call CSV that `ivrx analyze
    --format csv` exports: counts, transfer rate, reasons, time to decision and
    to agent (median, p90, histogram), calls by hour, trackers, mean sentiment.
(b) The per-call aggregation from the store's utterances, as ivrx does it
    (caller min / mean / final score, least-squares slope per minute,
    utterance counts), then the same aggregates. No topics: ivrx's number
    includes them, pandas' does not.

Prints the compute time of each (after imports) and whether the numbers
agree with ivrx's JSON document.
"""

import json
import sqlite3
import sys
import time

import numpy as np
import pandas as pd


def aggregates(df):
    """The across-call numbers from a per-call frame."""
    decided = df[df["decided"]]
    dec = df["decision_ms"].dropna()
    con = df.loc[df["transferred"], "connected_ms"].dropna()
    both = pd.concat([dec, con]) / 1000.0
    width = 10.0
    hist = np.histogram(both, bins=np.arange(0, both.max() + width, width))[0] if len(both) else []
    trackers = df["trackers"].dropna().astype(str).str.split(";").explode().value_counts() if "trackers" in df else None
    return {
        "calls": len(df),
        "decided": int(df["decided"].sum()),
        "transferred": int(df["transferred"].sum()),
        "transfer_rate": float(df["transferred"].mean()) if len(df) else None,
        "reasons": decided.groupby("reason").agg(
            decided=("conversation_id", "size"),
            transferred=("transferred", "sum"),
            median_decision_ms=("decision_ms", "median"),
        ),
        "decision_median": dec.median(),
        "decision_p90": dec.quantile(0.9),
        "connected_median": con.median(),
        "connected_p90": con.quantile(0.9),
        "histogram": hist,
        "hours": df.groupby("hour").agg(calls=("conversation_id", "size"), transferred=("transferred", "sum")),
        "mean_call_sentiment": df["sentiment_mean"].mean(),
        "trackers": trackers,
        "mean_duration_ms": df["duration_ms"].mean(),
    }


def from_csv(path):
    df = pd.read_csv(path)
    return aggregates(df)


def from_sqlite(path):
    con = sqlite3.connect(path)
    conv = pd.read_sql_query(
        "SELECT id AS conversation_id, started_at, duration_ms, decision_reason AS reason, decision_ms,"
        " transferred, connected_ms FROM conversations",
        con,
    )
    utt = pd.read_sql_query(
        "SELECT conversation_id, seq, speaker, offset_ms, score FROM utterances ORDER BY conversation_id, seq", con
    )
    counts = utt.groupby("conversation_id").size().rename("utterances")
    caller = utt[(utt["speaker"] == "caller") & utt["score"].notna()].copy()
    caller["x"] = caller["offset_ms"] / 60000.0
    caller["xy"] = caller["x"] * caller["score"]
    caller["xx"] = caller["x"] * caller["x"]
    g = caller.groupby("conversation_id")
    sums = g[["x", "score", "xy", "xx"]].sum()
    n = g.size()
    sxx = sums["xx"] - sums["x"] ** 2 / n
    sxy = sums["xy"] - sums["x"] * sums["score"] / n
    per = pd.DataFrame(
        {
            "caller_utterances": n,
            "sentiment_min": g["score"].min(),
            "sentiment_mean": g["score"].mean(),
            "sentiment_final": g["score"].last(),
            "sentiment_slope_per_min": (sxy / sxx).where((n >= 2) & (sxx > 1e-12)),
        }
    )
    df = conv.merge(per, left_on="conversation_id", right_index=True, how="left")
    df = df.merge(counts, left_on="conversation_id", right_index=True, how="left")
    df["transferred"] = df["transferred"].astype(bool)
    df["decided"] = df["reason"].notna()
    df["hour"] = pd.to_datetime(df["started_at"], utc=True, format="ISO8601").dt.hour
    return aggregates(df)


def close(a, b):
    if a is None or b is None or (isinstance(a, float) and np.isnan(a)):
        return a is None or b is None
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))


def main():
    csv_path, db_path, ivrx_json = sys.argv[1:4]
    t0 = time.perf_counter()
    a = from_csv(csv_path)
    t_csv = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = from_sqlite(db_path)
    t_sql = time.perf_counter() - t0
    print(f"csv_aggregate_seconds {t_csv:.3f}")
    print(f"sqlite_per_call_seconds {t_sql:.3f}")

    with open(ivrx_json) as f:
        doc = json.load(f)
    s, t = doc["summary"], doc["time_to_transfer"]
    expected = {
        "calls": s["calls"],
        "decided": s["decided"],
        "transferred": s["transferred"],
        "decision_median": t["decision"]["median_ms"],
        "decision_p90": t["decision"]["p90_ms"],
        "connected_median": t["connected"]["median_ms"],
        "connected_p90": t["connected"]["p90_ms"],
        "mean_call_sentiment": s["mean_call_sentiment"],
        "mean_duration_ms": s["mean_duration_ms"],
    }
    ok = True
    for name, want in expected.items():
        for label, got in (("csv", a[name]), ("sqlite", b[name])):
            same = close(got, want)
            ok &= same
            if not same:
                print(f"DIFFERENT {label} {name}: pandas {got} ivrx {want}")
    print("agreement with ivrx:", "all numbers agree" if ok else "SOME NUMBERS DIFFER")


if __name__ == "__main__":
    main()
