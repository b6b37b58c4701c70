#!/usr/bin/env bash
# Everything we measure on a lent GPU machine, in one call of a few minutes:
#
#   OUT=/some/dir bash benchmarks/on_gpu.sh [seconds, default 560]
#
# 1. benchmarks/gpu_paper_scale.py: the paper-scale composite (2 x 2048,
#    batch 80), ours against PyTorch's cuDNN LSTM: step time, peak memory,
#    time to quality.
# 2. The cpu-scale Table 2 cells (experiments/table2.py), 20 processes at a
#    time on the one GPU, in full float32 (no TensorFloat-32), then the
#    cpu-scale figures from their checkpoints.
# Each part has a deadline inside the budget; what finished is packed into
# $OUT (logs, the benchmark's JSON, and table2_cpu_gpu.tar.gz with every
# cell's metrics and the figures). Unpack the tarball into runs/ and
# `python -m experiments.table2 --scale=cpu --workdir=runs/table2_gpu` reads
# the finished cells back without training them.
#
# The machine's image has JAX, Flax, Optax, Orbax and PyTorch; the three
# pure-Python packages it lacks travel as wheels in .whl/ (see the device
# notes in the README).
# SCALE=quick and BENCH_ARGS="--hidden=16 --batch=4" make it a smoke test.
set -u
budget=${1:-560}
scale=${SCALE:-cpu}
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
out=${OUT:-runs/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target \
    /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
  >"$out/gpu.txt" 2>&1
python3 -c "import jax, flax, optax, torch; print('jax', jax.__version__, \
jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__, \
'torch', torch.__version__)" >>"$out/gpu.txt" 2>&1

echo "== paper-scale benchmark ($(left) s left)"
timeout 300 python3 -m benchmarks.gpu_paper_scale --steps=10 \
  --train_seconds=30 --eval_seconds=10 --valid_sequences=500 \
  --output="$out/gpu_paper_scale.json" \
  ${BENCH_ARGS:-} 2>&1 | grep -v "^I1\|^W1" | tee "$out/gpu_paper_scale.log"

echo "== $scale-scale Table 2 cells ($(left) s left)"
work=runs/table2_gpu
logs=runs/gpu_logs
mkdir -p $logs
cells=()
for seed in 0 1; do
  for row in future composite future_conditional composite_conditional \
    autoencoder composite_1layer; do
    cells+=("mnist $row $seed")
  done
  for row in future composite future_conditional composite_conditional; do
    cells+=("patches $row $seed")
  done
done
cell_budget=$(($(left) - 70))
printf '%s\n' "${cells[@]}" | JAX_DEFAULT_MATMUL_PRECISION=highest \
  xargs -P 20 -L 1 bash -c 'timeout '"$cell_budget"' python3 -m \
  experiments.table2 --scale='"$scale"' --workdir='"$work"' --columns=$0 \
  --rows=$1 --seeds=$2 >'"$logs"'/cell_$0_$1_$2.log 2>&1; echo "$0 $1 $2 \
  rc=$?"' \
  | tee "$out/cells.txt"

echo "== figures ($(left) s left)"
timeout $(($(left) - 15)) python3 -m experiments.figures --scale="$scale" \
  --workdir="$work" >"$out/figures.log" 2>&1
echo "figures rc=$?"
tail -3 "$out/figures.log"

# Small files only: metrics, configs, wall times, figures, the cell logs.
(cd runs && find table2_gpu \( -name metrics.jsonl -o -name config.json \
  -o -name wall_seconds.json -o -name '*.png' -o -name '*.gif' \) -print0 |
  tar --null -czf "$out/table2_cpu_gpu.tar.gz" -T -)
tar -czf "$out/cell_logs.tar.gz" -C runs gpu_logs
ls -la "$out"
echo "done after $(($(date +%s) - start)) s"
