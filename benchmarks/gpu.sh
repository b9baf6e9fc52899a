#!/usr/bin/env bash
# The throughput cases on one GPU with bf16 autocast, torch.compile and channels-last, in under 5 minutes.
#
#   bash benchmarks/gpu.sh                  # writes benchmarks/results/gpu-*.json and prints the tables
#   OUT=/tmp/r bash benchmarks/gpu.sh --small --devices cpu    # the same script on CPU: a smoke check of it
#
# Extra arguments go to every `python -m benchmarks.throughput` call (later ones win). Each call is short:
# 6 epochs (the first warms up, and absorbs compile time), 2 interleaved repeats (1 with compile: every arm
# compiles its nets again); time budget per call 200 s, ~5 min in all (estimated: not yet run on a GPU).
# Same cases as the CPU run (benchmarks/throughput.py): (a)-(e) steps only, (f) end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
COMMON=(--devices cuda --epochs 6 --e2e-epochs 6 --repeats 2)

run() {  # run NAME ARGS...: one benchmark call, its JSON in $OUT/gpu-NAME.json
  local name=$1; shift
  echo "== $name: python -m benchmarks.throughput ${COMMON[*]} $* (extra: ${EXTRA[*]:-none})"
  timeout 200 python -m benchmarks.throughput "${COMMON[@]}" "$@" --out "$OUT/gpu-$name.json" ${EXTRA[@]+"${EXTRA[@]}"}
}

EXTRA=("$@")
run bf16 --precision bf16-mixed --families classifier vae gan --batches-per-step 8  # the fast path, and 1 per step
run bf16-compile --precision bf16-mixed --compile --cases steps --families classifier --repeats 1  # compiles once per arm
run cnn-bf16-channels-last --precision bf16-mixed --channels-last --cases steps --families classifier_cnn
echo "tables above; JSON in $OUT/gpu-*.json"
