#!/usr/bin/env bash
# Runs experiments.main on every worker of a Cloud TPU VM pod slice.
#   TPU_NAME=nnce-v4-32 ZONE=us-central2-b ACCELERATOR=v4-32 launch/tpu_pod.sh \
#     --config=experiments/configs/cifar10_lebm.py --workdir=/mnt/shared/runs/cifar
# Creates the slice if it does not exist (KEEP=0 deletes it afterwards), copies this checkout
# to every worker, installs it, runs the same command on all workers (jax.distributed detects
# the pod), streams the logs, and on Ctrl-C stops the job on every worker. DRY_RUN=1 prints
# the gcloud commands instead of running them. The workdir must be a filesystem all workers
# share (e.g. a Filestore mount): metrics and configs are plain files.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
ACCELERATOR="${ACCELERATOR:-v4-8}"
RUNTIME="${RUNTIME:-tpu-ubuntu2204-base}"
KEEP="${KEEP:-1}"
REMOTE_DIR="nnce_jax"

run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then printf 'DRY_RUN:'; printf ' %q' "$@"; echo; else "$@"; fi
}
on_all_workers() {
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="$1"
}

if [[ "${DRY_RUN:-0}" != 1 ]] && gcloud compute tpus tpu-vm describe "$TPU_NAME" --zone="$ZONE" >/dev/null 2>&1; then
  echo "reusing $TPU_NAME"
else
  run gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" \
    --accelerator-type="$ACCELERATOR" --version="$RUNTIME"
fi
cleanup() {
  on_all_workers "pkill -9 -f experiments.main || true"
  if [[ "$KEEP" == 0 ]]; then run gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone="$ZONE" --quiet; fi
}
trap cleanup EXIT

archive="$(mktemp -d)/code.tar.gz"
git archive --format=tar.gz -o "$archive" HEAD
run gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME:code.tar.gz" --zone="$ZONE" --worker=all
on_all_workers "rm -rf $REMOTE_DIR && mkdir -p $REMOTE_DIR && tar xzf code.tar.gz -C $REMOTE_DIR && \
  cd $REMOTE_DIR && python3 -m venv .venv && .venv/bin/pip install -q -e . 'jax[tpu]'"
args="$(printf ' %q' "$@")"
# Every worker runs the same command; --distributed lets JAX find the pod's coordinator.
on_all_workers "cd $REMOTE_DIR && .venv/bin/python -m experiments.main --distributed$args 2>&1 | \
  sed \"s/^/[\$(hostname)] /\""
