#!/usr/bin/env bash
# run.sh: end-to-end relay benchmark, smtp-source -> portcullis -> smtp-sink,
# beside Postfix relaying to the same sink in the same run (see
# ../../../../shared/bench/README.md). No stages configured. Prints each
# run's key=value lines, the medians and the ratio portcullis/postfix.
#
#   core/delivery/bench/run.sh [runs] [sessions] [messages] [size]
#
# Needs root (Postfix baseline), the postfix package, and a checkout next to
# shared/. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../../.."
runs=${1:-3}; sessions=${2:-20}; messages=${3:-5000}; size=${4:-5120}
bench=../shared/bench
relay_port=2525; sink_port=2626
work=$(mktemp -d /tmp/portcullis-bench.XXXXXX)
chmod 755 "$work" # Postfix daemons run as postfix and must reach its dirs
trap 'kill $pc_pid 2>/dev/null || true; wait 2>/dev/null || true; "$bench/postfix-relay.sh" stop "$work/pf" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
pc_pid=

go build -o "$work/portcullis" ./cmd/portcullis
cat >"$work/portcullis.yaml" <<CF
hostname: relay.portcullis-bench.test
listeners: [{name: mx, address: "127.0.0.1:$relay_port"}]
limits: {max_connections: 1000, max_connections_per_ip: 1000}  # smtp-source from one IP; Postfix has no such cap here
relay: {networks: ["127.0.0.0/8"]}
routes: [{domains: ["*"], next_hop: "127.0.0.1:$sink_port", tls: none}]
dns: {servers: ["127.0.0.1:1"], timeout: 1s}
queue: {dir: spool, quarantine_dir: held, workers: 50}
state: {path: state.db}
log: {format: text, level: info}
CF

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
rate() { awk -F= '/^end_to_end_msgs_per_s=/{print $2}' "$1"; }
acc() { awk -F= '/^accepted_msgs_per_s=/{print $2}' "$1"; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for i in $(seq "$runs"); do
  # Postfix baseline
  rm -rf "$work/pf"
  "$bench/postfix-relay.sh" start "$work/pf" "$relay_port" "$sink_port" >/dev/null
  wait_port "$relay_port"
  "$bench/smtp-throughput.sh" --sink "$sink_port" "127.0.0.1:$relay_port" "$sessions" "$messages" "$size" | tee "$work/postfix.$i"
  "$bench/postfix-relay.sh" stop "$work/pf" >/dev/null
  sleep 1

  # Portcullis
  rm -rf "$work/spool" "$work/held"
  "$work/portcullis" run -c "$work/portcullis.yaml" 2>"$work/portcullis.$i.log" &
  pc_pid=$!
  wait_port "$relay_port"
  cpu0=$(awk '{print $14+$15}' /proc/$pc_pid/stat)
  "$bench/smtp-throughput.sh" --sink "$sink_port" "127.0.0.1:$relay_port" "$sessions" "$messages" "$size" | tee "$work/portcullis.$i"
  cpu1=$(awk '{print $14+$15}' /proc/$pc_pid/stat)
  echo "portcullis_cpu_ms_per_msg=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$messages" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.3f", (b-a)*1000/hz/n}')"
  kill -TERM $pc_pid; wait $pc_pid || true; pc_pid=
  sleep 1
done

pf=$(for i in $(seq "$runs"); do rate "$work/postfix.$i"; done | median)
pc=$(for i in $(seq "$runs"); do rate "$work/portcullis.$i"; done | median)
echo "postfix_end_to_end_msgs_per_s_median=$pf"
echo "portcullis_end_to_end_msgs_per_s_median=$pc"
echo "ratio_portcullis_over_postfix=$(awk -v a="$pc" -v b="$pf" 'BEGIN{printf "%.2f", (b>0)?a/b:0}')"
# The rate at which each answered 250 to the final dot, while relaying.
pfa=$(for i in $(seq "$runs"); do acc "$work/postfix.$i"; done | median)
pca=$(for i in $(seq "$runs"); do acc "$work/portcullis.$i"; done | median)
echo "postfix_accepted_msgs_per_s_median=$pfa"
echo "portcullis_accepted_msgs_per_s_median=$pca"
echo "accept_ratio_portcullis_over_postfix=$(awk -v a="$pca" -v b="$pfa" 'BEGIN{printf "%.2f", (b>0)?a/b:0}')"
