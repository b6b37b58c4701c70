#!/usr/bin/env bash
# Table 2 at the paper's size on one GPU, in one command of at most 9 minutes:
#
#   bash benchmarks/on_gpu.sh OUT_DIR [seconds in all, default 540]
#
# For a machine whose Python already has JAX with CUDA and PyTorch (install
# the project first, `pip install -e .`, or bring the wheels it lacks in
# .whl/, which are then installed without the network):
#
# 1. times our training step at the paper's size (2 x 2048 units, batch 80)
#    against PyTorch's cuDNN nn.LSTM on the same model, in float32 and with
#    --config.model.matmul_dtype=bfloat16 (benchmarks.gpu_paper_scale, about
#    a minute);
# 2. trains the four rows of Table 2 on Moving MNIST at the paper's size
#    (the paper's cell with peepholes, batch 80, 10 + 10 frames) for the same
#    wall-clock budget each, sized so that everything fits in the time given,
#    and evaluates each on the 10,000-sequence test set, free-running, in
#    nats/frame and today's units (experiments.table2 --train_seconds);
# 3. writes to OUT_DIR: table2_paper.json / .md (paper | ours | difference,
#    steps reached, seconds), gpu_paper_scale.json / .md (the timings) and
#    the logs. Only results are kept: each cell's checkpoints are deleted
#    when it is done.
#
# TRAIN_SECONDS=S fixes the budget per cell instead of sizing it. A smoke test
# on the CPU: SCALE=quick TRAIN_SECONDS=2 BENCH_ARGS="--hidden=16 --batch=4
# --impls=ours,ours_bf16" bash benchmarks/on_gpu.sh /tmp/gpu_smoke (the tests
# run the same Python entry points at a tiny size).
set -u
out=${1:?usage: bash benchmarks/on_gpu.sh OUT_DIR [seconds]}
budget=${2:-540}
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
mkdir -p "$out"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target \
    /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import jax, flax, torch; print('jax', jax.__version__, \
jax.devices(), 'flax', flax.__version__, 'torch', torch.__version__)"
} >"$out/machine.txt" 2>&1

echo "== 1. our step against cuDNN at the paper's size ($(left) s left)"
timeout 150 python3 -m benchmarks.gpu_paper_scale --steps=10 \
  --impls=ours,ours_bf16,torch --train_seconds=0 \
  --output="$out/gpu_paper_scale.json" ${BENCH_ARGS:-} 2>&1 |
  grep -v "^[IW]1" | tee "$out/gpu_paper_scale.log"

# About 45 s per cell besides its training: start-up, compilation, the test
# set, and the evaluations (a second one, fed true frames, for the
# conditional rows).
seconds=${TRAIN_SECONDS:-$((($(left) - 40) / 4 - 45))}
if [ "$seconds" -lt 1 ]; then seconds=10; fi
echo "== 2. Table 2 at the paper's size, ${seconds} s per row ($(left) s left)"
timeout $(($(left) - 10)) python3 -m experiments.table2 --scale="${SCALE:-paper}" \
  --columns=mnist --seeds=0 --train_seconds="$seconds" \
  --rows=future,composite,future_conditional,composite_conditional \
  --discard_checkpoints --workdir=runs/table2_paper_gpu \
  >"$out/table2.log" 2>&1
echo "table2 rc=$?"
tail -20 "$out/table2.log"
cp runs/table2_paper_gpu/table.json "$out/table2_paper.json" 2>/dev/null
cp runs/table2_paper_gpu/table.md "$out/table2_paper.md" 2>/dev/null
ls -la "$out"
echo "done after $(($(date +%s) - start)) s"
