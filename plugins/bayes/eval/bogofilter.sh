#!/bin/sh
# Trains bogofilter on the corpus TRAIN split and classifies the TEST split,
# printing FP rate (ham called spam), FN rate (spam let through) and accuracy
# at three cutoffs, for comparison with `go test -run TestEvalCorpus -v
# ./plugins/bayes`. Needs bogofilter (apt-get install bogofilter).
#
# usage: plugins/bayes/eval/bogofilter.sh [CORPUS_DIR]   (default: ../shared/corpus beside the repo)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus=${1:-$here/../../../../shared/corpus}
command -v bogofilter >/dev/null || { echo "bogofilter not installed: apt-get install bogofilter" >&2; exit 1; }
[ -f "$corpus/train.tar.gz" ] || { echo "no corpus at $corpus" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$corpus/train.tar.gz"
tar -C "$work" -xzf "$corpus/test.tar.gz"
cd "$work"
mkdir db
start=$(date +%s.%N)
find train/spam -type f | sort | xargs bogofilter -d db -s -B
find train/ham -type f | sort | xargs bogofilter -d db -n -B
mid=$(date +%s.%N)
find test -type f | sort | xargs bogofilter -d db -T -B > out.txt
end=$(date +%s.%N)
bogofilter -V 2>&1 | head -1
awk -v tt="$(echo "$mid - $start" | bc)" -v ct="$(echo "$end - $mid" | bc)" '
{ spam = ($1 ~ /\/spam\//); n++; if (spam) ns++; else nh++
  sc[n] = $3; lab[n] = spam; cls[n] = $2 }
END {
  printf "bogofilter: trained %d msgs in %.2fs, classified %d in %.2fs (%.0f msgs/s)\n", 4255, tt, n, ct, n/ct
  split("0.5 0.99", cuts, " ")
  for (c = 1; c <= 2; c++) {
    fp = 0; fn = 0
    for (i = 1; i <= n; i++) { s = (sc[i] >= cuts[c]); if (s && !lab[i]) fp++; if (!s && lab[i]) fn++ }
    printf "bogofilter cutoff %-4s FP %d/%d = %.2f%%  FN %d/%d = %.2f%%  accuracy %.2f%%\n", cuts[c], fp, nh, 100*fp/nh, fn, ns, 100*fn/ns, 100*(n-fp-fn)/n
  }
  fp = 0; fn = 0
  for (i = 1; i <= n; i++) { s = (cls[i] != "H"); if (s && !lab[i]) fp++; if (!s && lab[i]) fn++ }
  printf "bogofilter unsure=spam FP %d/%d = %.2f%%  FN %d/%d = %.2f%%  accuracy %.2f%%\n", fp, nh, 100*fp/nh, fn, ns, 100*fn/ns, 100*(n-fp-fn)/n
}' out.txt
