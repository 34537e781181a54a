#!/bin/bash
# One session on a lent GPU node: produce paper-scale results, resumably, within a time budget.
#
#   BUDGET=540 STEPS="1,paper20k,grid 3,paper20k,weight_decay,tasks" bash scripts/gpu_produce.sh
#
# STEPS: space-separated "MINUTES,PROFILE,GROUP[,GROUP...]": each runs
# `python3 -m memgen produce --max-minutes MINUTES --profile PROFILE --groups GROUP...` (no new
# batch after MINUTES), stopped with SIGINT when BUDGET seconds are spent (finished batches are
# kept: the next call trains only what is missing). The results come back as $OUT/results.tgz:
# untar it at the repository root and commit results/ before the next call, whose checkout is
# what it resumes from. Give the call a limit of at least BUDGET + 60 s (install, last kill, tar).
#
# Chapters 14-15 need ripser, persim and powerlaw, which the node lacks: put their wheels in
# .whl/ (in .gitignore), e.g. `python3 -m pip download --no-deps --only-binary=:all: --python-version
# 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 -d .whl
# ripser==0.6.15 persim==0.4.1 powerlaw==2.0.0 hopcroftkarp==1.2.4 deprecated==1.3.1`, and carry .whl.
T0=$(date +%s); BUDGET=${BUDGET:-540}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
if ls .whl/*.whl >/dev/null 2>&1; then  # installed next to the wheels (.whl/ is git-ignored)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .whl/site .whl/*.whl || exit 1
  export PYTHONPATH="$PWD/.whl/site"
fi
# eager steps (a compiled step's first calls would eat into a 10-minute call)
export PYTHONUNBUFFERED=1 MEMGEN_COMPILE=${MEMGEN_COMPILE:-0} MEMGEN_PAD_WIDTHS=${MEMGEN_PAD_WIDTHS:-0}
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: none (no NVIDIA card?)"
step() {  # step MINUTES PROFILE GROUP...
  local l; l=$(left); [ "$l" -gt 20 ] || { echo "skip $*: no time left"; return; }
  echo "== $(date +%T) ${l}s left: produce $*"
  # SIGINT at the budget (finished batches are kept), SIGKILL 20 s later if that is not heeded;
  # progress-bar redraws are dropped from the log, everything else streams through
  timeout -k 20 -s INT "$l" python3 -m memgen produce --device "${DEV:-cuda}" --max-minutes "$1" --profile "$2" \
    --groups "${@:3}" 2>&1 | tr '\r' '\n' | grep --line-buffered -v -E '(step/s|s/step|it/s|s/it)\]$|^[[:space:]]*$'
  return 0
}
for s in $STEPS; do step ${s//,/ }; done
mkdir -p "${OUT:-.}" && tar czf "${OUT:-.}/results.tgz" results/paper results/paper20k
echo "== done after $(( $(date +%s) - T0 ))s"
