#!/usr/bin/env bash
# ivrx analyze vs pandas on the same conversations.
#
# Generates N synthetic conversations (default 100,000) into a SQLite store,
# then measures, with the release build:
#   1. `ivrx analyze --format json`: per-call metrics from the stored utterances,
#      every aggregate and the topics near the decline (wall time, peak RSS);
#   2. `ivrx analyze --format csv`: the per-call export;
#   3. pandas on the same data (benches/analyze_pandas.py, in a venv under target/):
#      (a) the across-call aggregation from that CSV, and
#      (b) the per-call aggregation from the SQLite utterances (min, mean, final,
#          slope) plus the same aggregates (no topics), which is ivrx's own job;
# and prints the ratios (pandas time / ivrx time) and whether the numbers agree.
#
# Usage: benches/analyze_vs_pandas.sh [N]      (REGENERATE=1 to rebuild the store)
set -euo pipefail

n=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/target/bench-analyze"
db="$work/synthetic-$n.db"
mkdir -p "$work"

echo "== building ivrx (release)"
(cd "$root" && cargo build --release --quiet)
ivrx="$root/target/release/ivrx"

# `/usr/bin/time -v` reports peak RSS; fall back to bash's time without it.
measure() { # measure NAME CMD... (stdout of CMD goes to $work/NAME.out)
  local name=$1; shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$work/$name.time" "$@" > "$work/$name.out"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/$name.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
    echo "$name: wall $wall, peak RSS $((rss / 1024)) MiB"
    seconds "$wall" > "$work/$name.seconds"
  else
    local start end
    start=$(date +%s.%N); "$@" > "$work/$name.out"; end=$(date +%s.%N)
    echo "$end - $start" | bc > "$work/$name.seconds"
    echo "$name: wall $(cat "$work/$name.seconds") s (peak RSS unknown: /usr/bin/time missing)"
  fi
}
seconds() { # h:mm:ss or m:ss.ss -> seconds
  awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }' <<< "$1"
}

if [ ! -f "$db" ] || [ "${REGENERATE:-0}" = 1 ]; then
  rm -f "$db" "$db-wal" "$db-shm"
  echo "== generating $n synthetic conversations into $db"
  # The --since in the future makes the run generate only (it analyses no call).
  measure generate "$ivrx" analyze --db "$db" --synthetic "$n" --seed 7 --since 2100-01-01 --format json
fi

echo "== ivrx analyze (three runs; the median counts)"
for run in 1 2 3; do
  measure "ivrx_json_$run" "$ivrx" analyze --db "$db" --format json
done
mv "$work/ivrx_json_3.out" "$work/ivrx_json.out"
rm -f "$work/ivrx_json_1.out" "$work/ivrx_json_2.out"
sort -n "$work"/ivrx_json_?.seconds | sed -n 2p > "$work/ivrx_json.seconds"
measure ivrx_csv "$ivrx" analyze --db "$db" --format csv
cp "$work/ivrx_csv.out" "$work/calls.csv"

echo "== pandas"
venv="$work/venv"
if ! "$venv/bin/python" -c "import pandas" 2> /dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pandas
fi
measure pandas "$venv/bin/python" "$root/benches/analyze_pandas.py" "$work/calls.csv" "$db" "$work/ivrx_json.out"
cat "$work/pandas.out"

ivrx_s=$(cat "$work/ivrx_json.seconds")
pandas_s=$(cat "$work/pandas.seconds")
csv_agg=$(awk '/^csv_aggregate_seconds/ {print $2}' "$work/pandas.out")
sql_agg=$(awk '/^sqlite_per_call_seconds/ {print $2}' "$work/pandas.out")
echo "== result ($n conversations)"
awk -v i="$ivrx_s" -v p="$pandas_s" -v c="$csv_agg" -v s="$sql_agg" 'BEGIN {
  printf "ivrx analyze --format json (process wall, median of 3): %8.2f s\n", i
  printf "pandas, per-call + aggregates from SQLite (compute):  %8.2f s  ratio pandas/ivrx %.2fx\n", s, s / i
  printf "pandas, aggregates from the ivrx CSV (compute):       %8.2f s  ratio pandas/ivrx %.2fx\n", c, c / i
  printf "pandas script, whole process (both, with imports):   %8.2f s  ratio pandas/ivrx %.2fx\n", p, p / i
}'
