#!/usr/bin/env bash
# What a session lent a GPU runs for `nasface validate` (issue 26, item 4), as one command: the
# published networks nasface builds, trained at a GPU-sized proxy (112x112 input, 480 steps of 64
# faces, 3 seeds) on ORL and on synthetic faces, several workers per source sharing its log (each
# run is claimed by one worker), until a deadline that fits one 9-minute call.  Needs torch only
# (no Optuna, Ray or plotly: the page is written later, here, by `--analyse`).  The logs are
# resumable: put them back under benchmarks/results/validate-<source>-gpu/ and run this again to
# continue; a run cut off by the deadline is trained again.
#
#   OUT=folder BUDGET_S=480 WORKERS=4 [STEPS=480 RESOLUTION=112 BATCH=64 EXTRA="more flags"] bash benchmarks/gpu_validate.sh
#
# The candidate task of issue 26 (no teacher, 880 identities x 20 synthetic faces), synthetic only,
# into benchmarks/results/validate-synthetic-gpu-candidate/:
#
#   CONFIG=benchmarks/more_data_480.yaml SOURCES=synthetic TAG=-candidate TEACHER_SPEC= OUT=folder bash benchmarks/gpu_validate.sh
#
# Then, on a machine with plotly:  nasface validate <the same flags> --analyse
# The teacher is pinned to MobileFaceNet (--teacher-spec; on a GPU `auto` would train iresnet50),
# as the CPU studies' is.
set -u -o pipefail
OUT=${OUT:-/tmp/gpu-validate}
WORKERS=${WORKERS:-4}
mkdir -p "$OUT"
deadline=$(( $(date +%s) + ${BUDGET_S:-480} ))
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD OMP_NUM_THREADS=1
PY=${PYTHON:-python3}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/env.txt"
$PY -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/env.txt"

SOURCES=${SOURCES:-orl synthetic}
TAG=${TAG:-}
TEACHER_SPEC=${TEACHER_SPEC-mobilefacenet}  # empty where the study trains no teacher (the candidate task)
common=(--config "${CONFIG:-studies/lfr-light.yaml}" --seeds 3 --threads 1 --device "${DEVICE:-cuda}"
        --resolution "${RESOLUTION:-112}" --proxy-steps "${STEPS:-480}" --proxy-batch "${BATCH:-64}"
        ${TEACHER_SPEC:+--teacher-spec "$TEACHER_SPEC"})
read -r -a extra <<< "${EXTRA:-}"  # e.g. a smoke test on a CPU: --teacher none (with TEACHER_SPEC=)
declare -A source_flags=([orl]="--data orl --train-identities 20 --val-identities 20 --pairs 1800"
                         [synthetic]="--data synthetic")
pids=()
declare -A first_pid=()
start_worker() {  # source, worker number
  # shellcheck disable=SC2086
  setsid $PY -m nasface validate "${common[@]}" ${source_flags[$1]} "${extra[@]}" --out "benchmarks/results/validate-$1-gpu$TAG" \
    > "$OUT/validate-$1-$2.log" 2>&1 < /dev/null &
  pids+=("$!")
  [ "$2" = 1 ] && first_pid[$1]=$!
}
for source in $SOURCES; do start_worker "$source" 1; done
# the first worker of each source decodes the data and trains the teacher; the others then read the caches
for source in $SOURCES; do
  first=${first_pid[$source]}
  # the teacher is ready once it verifies (or, without one, once a run has finished)
  until grep -q "verifies\| seed [0-9]*: " "$OUT/validate-$source-1.log" || [ "$(date +%s)" -ge "$deadline" ]; do
    kill -0 "$first" 2> /dev/null || break  # it ended: an error, or nothing left to train
    sleep 2
  done
  for n in $(seq 2 "$WORKERS"); do start_worker "$source" "$n"; done
done
nvidia-smi dmon -s u -d 5 > "$OUT/dmon.log" 2>&1 &
dmon=$!
running() { for pid in "${pids[@]}"; do kill -0 "$pid" 2> /dev/null && return 0; done; return 1; }
while [ "$(date +%s)" -lt "$deadline" ] && running; do sleep 5; done
for pid in "${pids[@]}"; do kill -- -"$pid" 2> /dev/null; done
sleep 2
for pid in "${pids[@]}"; do kill -9 -- -"$pid" 2> /dev/null; done
kill "$dmon" 2> /dev/null
for source in $SOURCES; do
  cp "benchmarks/results/validate-$source-gpu$TAG/log.jsonl" "$OUT/validate-$source-gpu$TAG.jsonl" 2>/dev/null
done
wc -l "$OUT"/*.jsonl
