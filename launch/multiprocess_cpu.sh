#!/usr/bin/env bash
# N processes on this machine, each with D fake CPU devices, joined by jax.distributed over
# 127.0.0.1: the multi-host code path (per-process batch slices, cross-process collectives,
# one checkpoint directory) without a cluster.
#   NUM_PROCESSES=2 DEVICES_PER_PROCESS=2 launch/multiprocess_cpu.sh --workdir=runs/mp --config=experiments/configs/density_chasm.py
# Logs: <workdir>/process_<i>.log (process 0's also on stdout), pids in <workdir>/process_<i>.pid.
# SIGTERM to any process (or to this script, which forwards it to all) is a preemption: the
# processes agree on a step, save it and all exit 143, and so does this script; rerun to resume.
# If a process fails otherwise, the others are stopped with SIGKILL (JAX catches SIGTERM) and
# this script exits with that process's status.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}"
NUM_PROCESSES="${NUM_PROCESSES:-2}"
DEVICES_PER_PROCESS="${DEVICES_PER_PROCESS:-2}"
PORT="${PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
WORKDIR="runs/multiprocess"
for arg in "$@"; do [[ "$arg" == --workdir=* ]] && WORKDIR="${arg#--workdir=}"; done
mkdir -p "$WORKDIR"

export JAX_PLATFORMS=cpu
export XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES_PER_PROCESS} --xla_cpu_collective_call_terminate_timeout_seconds=60"
pids=()
for ((i = 0; i < NUM_PROCESSES; i++)); do
  "$PYTHON" -m experiments.main --workdir="$WORKDIR" "$@" --distributed \
    --coordinator_address="127.0.0.1:${PORT}" --num_processes="$NUM_PROCESSES" --process_id="$i" \
    >"$WORKDIR/process_${i}.log" 2>&1 &
  pids+=("$!")
  echo "$!" >"$WORKDIR/process_${i}.pid"
done
trap 'kill -TERM "${pids[@]}" 2>/dev/null || true' TERM
tail -n +1 -f "$WORKDIR/process_0.log" &
tail_pid=$!
status=0
for ((i = 0; i < NUM_PROCESSES; i++)); do
  code=0
  while true; do  # wait returns early (> 128) when the trap runs: wait again for the real status
    wait "${pids[$i]}" && code=0 || code=$?
    kill -0 "${pids[$i]}" 2>/dev/null || break
  done
  echo "process $i exited with status $code" >&2
  if [[ $code -ne 0 && $status -eq 0 ]]; then
    status=$code
    [[ $code -eq 143 ]] || kill -9 "${pids[@]}" 2>/dev/null || true  # 143: the others stop too
  fi
done
kill "$tail_pid" 2>/dev/null || true
[[ $status -eq 0 || $status -eq 143 ]] || echo "a process failed; see $WORKDIR/process_*.log" >&2
exit "$status"
