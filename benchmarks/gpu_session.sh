#!/usr/bin/env bash
# What a session lent a GPU runs, as one command: the CUDA path of the proxy preset by preset
# (benchmarks/gpu_check.py, which stops the script if any preset fails), then the fidelity study of
# studies/lfr-light.yaml on ORL and on synthetic faces with the candidates on the GPU, several
# workers per GPU sharing each source's log, until a deadline.  The logs are resumable: put them
# back under benchmarks/results/fidelity-<source>-cuda/ and run this again to continue.
#
#   OUT=folder BUDGET_S=420 WORKERS=7 [CHECK=0] bash benchmarks/gpu_session.sh   (CHECK=0: skip the check)
#
# The teacher is pinned to the CPU study's (--teacher-spec mobilefacenet; on a GPU `auto` would
# train iresnet50), so the two studies differ only in where, and in what precision, they train.
set -u -o pipefail
OUT=${OUT:-/tmp/gpu-session}
WORKERS=${WORKERS:-7}
mkdir -p "$OUT"
deadline=$(( $(date +%s) + ${BUDGET_S:-420} ))
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD OMP_NUM_THREADS=1
PY=${PYTHON:-python3}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/env.txt"
$PY -c "import torch, numpy, scipy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__)" \
  | tee -a "$OUT/env.txt"
[ "${CHECK:-1}" = 0 ] || $PY benchmarks/gpu_check.py --out "$OUT/gpu_check.json" 2>&1 | tee "$OUT/gpu_check.log" || exit 1

common=(--config studies/lfr-light.yaml --archs 40 --second-seeds 12 --threads 1 --device "${DEVICE:-cuda}"
        --teacher-spec mobilefacenet)
declare -A source_flags=([orl]="--data orl --train-identities 20 --val-identities 20 --pairs 1800"
                         [synthetic]="--data synthetic")
start_worker() {  # source, worker number
  # --timeout: a worker starts only the runs it expects to finish before the deadline (once the log
  # can tell: a power law of FLOPs fitted to its runs); the pkill below is the backstop
  # shellcheck disable=SC2086
  setsid $PY -m nasface fidelity "${common[@]}" ${source_flags[$1]} --out "benchmarks/results/fidelity-$1-cuda" \
    --timeout "$(( deadline - $(date +%s) > 1 ? deadline - $(date +%s) : 1 ))s" > "/tmp/fidelity-$1-$2.log" 2>&1 < /dev/null &
}
for source in orl synthetic; do start_worker "$source" 1; done
# the first worker of each source decodes the data and trains the teacher; the others then read the caches
for source in orl synthetic; do
  until grep -q "verifies" "/tmp/fidelity-$source-1.log" || [ "$(date +%s)" -ge "$deadline" ]; do
    pgrep -f "nasface fidelity.*fidelity-$source-cuda" > /dev/null || { cat "/tmp/fidelity-$source-1.log"; break; }
    sleep 2
  done
  for n in $(seq 2 "$WORKERS"); do start_worker "$source" "$n"; done
done
nvidia-smi dmon -s u -d 5 > "$OUT/dmon.log" 2>&1 &
while [ "$(date +%s)" -lt "$deadline" ] && pgrep -f "nasface fidelity.*-cuda" > /dev/null; do sleep 5; done
pkill -f "nasface fidelity.*-cuda"; sleep 2; pkill -9 -f "nasface fidelity.*-cuda"
for source in orl synthetic; do
  cp "benchmarks/results/fidelity-$source-cuda/log.jsonl" "$OUT/fidelity-$source-cuda.jsonl" 2>/dev/null
  for f in /tmp/fidelity-"$source"-*.log; do echo "== $f"; cat "$f"; done > "$OUT/workers-$source.log"
done
wc -l "$OUT"/*.jsonl
