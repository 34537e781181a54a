#!/bin/bash
# One session on a lent GPU node: produce paper-scale results, resumably, within a time budget.
#
#   BUDGET=540 STEPS="1,paper20k,grid 3,paper20k,weight_decay,tasks" bash scripts/gpu_produce.sh
#
# STEPS: space-separated "MINUTES,PROFILE,GROUP[,GROUP...]": each runs
# `python3 -m memgen produce --max-minutes MINUTES --profile PROFILE --batch-neurons BATCH_NEURONS
# --groups GROUP... $PRODUCE_ARGS` (no new batch after MINUTES; PRODUCE_ARGS, e.g. "--widths 129 513
# 2049 --noises 0.2 0.8", picks the headline cells first), stopped with SIGINT when BUDGET seconds are
# spent (finished batches are kept: the next call trains only what is missing). The results come
# back as $OUT/results.tgz: untar it at the repository root and commit results/ before the next
# call, whose checkout is what it resumes from. Give the call a limit of at least BUDGET + 60 s
# (install, last kill, tar).
#
# A batch longer than one call (at profile paper, 200k steps: an M = 2049 batch takes about
# 13 minutes) resumes across calls, on fresh machines: a batch of 5000 steps or more checkpoints
# every tenth of its steps into runs/checkpoints/, and this script sends each checkpoint back as
# $OUT/ck-<tag>.pt.<nn>, parts of at most PART_BYTES (15 MiB; the device returns 8 files of
# 16 MiB at most). Before the next call, copy those parts into .ckpt/ (git-ignored; remove the old
# ones first) and carry .ckpt: the script joins them into runs/checkpoints/ and `produce` resumes
# the batch at its last checkpoint (a part missing or damaged: the checksummed load refuses it and
# the batch starts over). BATCH_NEURONS (default 8200 runs × width: 4 runs at M = 2049, 2 at 4097)
# keeps a checkpoint near 33 MB at P = 113, so that it travels within the 64 MiB a call carries,
# the checkout included.
#
# Chapters 14-15 need ripser, persim and powerlaw, which the node lacks: put their wheels in
# .whl/ (in .gitignore), e.g. `python3 -m pip download --no-deps --only-binary=:all: --python-version
# 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 -d .whl
# ripser==0.6.15 persim==0.4.1 powerlaw==2.0.0 hopcroftkarp==1.2.4 deprecated==1.3.1`, and carry .whl.
T0=$(date +%s); BUDGET=${BUDGET:-540}; BATCH_NEURONS=${BATCH_NEURONS:-8200}; PART_BYTES=${PART_BYTES:-15728640}
OUT=${OUT:-.}; CKPT_IN=${CKPT_IN:-.ckpt}; STORE=${MEMGEN_STORE:-runs}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
# checkpoints carried from the last call: ck-<tag>.pt.00, .01, ... joined into the store
for first in "$CKPT_IN"/ck-*.pt.00; do
  [ -e "$first" ] || break
  name=$(basename "${first%.00}"); mkdir -p "$STORE/checkpoints"
  cat "${first%.00}".[0-9][0-9] > "$STORE/checkpoints/${name#ck-}" || exit 1
  echo "== checkpoint ${name#ck-} restored from $CKPT_IN ($(du -h "$STORE/checkpoints/${name#ck-}" | cut -f1))"
done
if ls .whl/*.whl >/dev/null 2>&1; then  # installed next to the wheels (.whl/ is git-ignored)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .whl/site .whl/*.whl || exit 1
  export PYTHONPATH="$PWD/.whl/site"
fi
# eager steps (a compiled step's first calls would eat into a 10-minute call)
export PYTHONUNBUFFERED=1 MEMGEN_COMPILE=${MEMGEN_COMPILE:-0} MEMGEN_PAD_WIDTHS=${MEMGEN_PAD_WIDTHS:-0}
[ -z "$STEPS" ] || nvidia-smi -L 2>/dev/null || echo "nvidia-smi: none (no NVIDIA card?)"
step() {  # step MINUTES PROFILE GROUP...
  local l; l=$(left); [ "$l" -gt 20 ] || { echo "skip $*: no time left"; return; }
  echo "== $(date +%T) ${l}s left: produce $*"
  # SIGINT at the budget (finished batches are kept), SIGKILL 20 s later if that is not heeded;
  # progress-bar redraws are dropped from the log, everything else streams through
  timeout -k 20 -s INT "$l" python3 -m memgen produce --device "${DEV:-cuda}" --max-minutes "$1" --profile "$2" \
    --batch-neurons "$BATCH_NEURONS" --groups "${@:3}" $PRODUCE_ARGS 2>&1 | tr '\r' '\n' \
    | grep --line-buffered -v -E '(step/s|s/step|it/s|s/it)\]$|^[[:space:]]*$'
  return 0
}
for s in $STEPS; do step ${s//,/ }; done
mkdir -p "$OUT"
folders=$(for d in results/paper results/paper20k; do [ -d "$d" ] && echo "$d"; done)
[ -z "$folders" ] || tar czf "$OUT/results.tgz" $folders
# checkpoints of unfinished batches, in parts; 7 files at most beside results.tgz
n=0
for ck in "$STORE"/checkpoints/*.pt; do
  [ -e "$ck" ] || break
  parts=$(( ($(stat -c %s "$ck") + PART_BYTES - 1) / PART_BYTES ))
  if [ $((n + parts)) -gt 7 ]; then
    echo "== checkpoint $(basename "$ck") not sent: $parts part(s) of $PART_BYTES bytes would pass the 8 files \$OUT returns (lower BATCH_NEURONS)"
    continue
  fi
  split -b "$PART_BYTES" -d -a 2 "$ck" "$OUT/ck-$(basename "$ck")."
  n=$((n + parts))
  echo "== checkpoint $(basename "$ck") sent as $parts part(s): copy $OUT/ck-$(basename "$ck").* into .ckpt/ and carry .ckpt"
done
echo "== done after $(( $(date +%s) - T0 ))s"
