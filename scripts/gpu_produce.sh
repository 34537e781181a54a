#!/bin/bash
# One session on a lent GPU node: produce paper-scale results, resumably, within a time budget.
#
#   BUDGET=540 STEPS="1,paper20k,grid 3,paper20k,weight_decay,tasks" bash scripts/gpu_produce.sh
#
# STEPS: space-separated "MINUTES,PROFILE,GROUP[,GROUP...][,--widths,M...][,--noises,A...]": each runs
# `python3 -m memgen produce --max-minutes MINUTES --profile PROFILE --batch-neurons BATCH_NEURONS
# --groups GROUP... $PRODUCE_ARGS` (no new batch after MINUTES; PRODUCE_ARGS, e.g. "--widths 129
# 513 2049 --noises 0.2 0.8", picks the headline cells first), stopped with SIGINT when BUDGET
# seconds are spent (finished batches are kept: the next call trains only what is missing). Steps
# joined by "+" in one item run at the same time (this eager engine is launch-bound: one process
# leaves the GPU mostly idle), e.g. STEPS="6,paper20k,optimizers+8,paper,grid,--widths,129": their
# selections must not overlap (two would train the same batch), and their unfinished batches'
# checkpoints must fit MAX_SEND_BYTES together (else the oldest stay behind: say a lower
# BATCH_NEURONS). A step's own --widths/--noises win over PRODUCE_ARGS'. PYTHON names the
# interpreter (default python3), DEV the device (default cuda). The
# results come back as $OUT/results.tgz: untar it at the repository root and commit results/
# before the next call, whose checkout is what it resumes from. Give the call a limit of at least
# BUDGET + 60 s (install, last kill, tar).
#
# A batch longer than one call goes on on the next machine. At profile paper (200k steps) a batch
# of four M = 2049 runs takes about 12 minutes on an H200, and a call lasts at most 10. A batch of
# 5000 steps or more checkpoints every tenth of its steps into $MEMGEN_STORE/checkpoints/ (not the
# groups progress, transformer and images, whose batches must fit one call). This script sends
# each checkpoint back as $OUT/ck-<tag>.pt.00, .01, ..., parts of at most PART_BYTES (15 MiB: the
# device returns 8 files of 16 MiB at most), the newest first and at most MAX_SEND_BYTES (40 MiB)
# in all, so that they travel back within the 64 MiB a call carries, the checkout included. Before
# the next call, replace .ckpt/ (git-ignored) with them:
#   rm -rf .ckpt && mkdir .ckpt && cp <files_at>/ck-*.pt.* .ckpt/
# and carry .ckpt (with .whl). The script joins the parts into the store, where `produce` resumes
# the batch at its last checkpoint (a store still holding a later checkpoint of the same batch, on a
# machine kept warm since the last call, keeps its own). The checkpoint is named after the batch's runs: keep STEPS'
# groups, PRODUCE_ARGS, BATCH_NEURONS, DEV and MEMGEN_PAD_WIDTHS as they were until that batch
# has finished, or it is planned differently and starts over (the script's last lines say which
# restored checkpoints were not resumed). BATCH_NEURONS (default 8200 runs × width: 4 runs at
# M = 2049, 2 at 4097) keeps a checkpoint near 33 MB at P = 113.
#
# Chapters 14-15 need ripser, persim and powerlaw, which the node lacks: put their wheels in
# .whl/ (in .gitignore), e.g. `python3 -m pip download --no-deps --only-binary=:all: --python-version
# 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 -d .whl
# ripser==0.6.15 persim==0.4.1 powerlaw==2.0.0 hopcroftkarp==1.2.4 deprecated==1.3.1`, and carry .whl.
T0=$(date +%s); BUDGET=${BUDGET:-540}; BATCH_NEURONS=${BATCH_NEURONS:-8200}
PART_BYTES=${PART_BYTES:-15728640}; MAX_SEND_BYTES=${MAX_SEND_BYTES:-41943040}
OUT=${OUT:-out}; CKPT_IN=${CKPT_IN:-.ckpt}
export MEMGEN_STORE=${MEMGEN_STORE:-$PWD/runs}
for v in BUDGET BATCH_NEURONS PART_BYTES MAX_SEND_BYTES; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "gpu_produce.sh: $v=${!v} is not allowed; it must be an integer >= 1" >&2; exit 2; }
done
for s in $STEPS; do  # every step of a "+" item names at least MINUTES,PROFILE,GROUP
  [[ $s =~ ^[^+,]+,[^+,]+,[^+]+(\+[^+,]+,[^+,]+,[^+]+)*$ ]] || { echo "gpu_produce.sh: STEPS item '$s' is not allowed;" \
    "each is MINUTES,PROFILE,GROUP[,...], several joined by '+'" >&2; exit 2; }
done
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
REPO=$(cd "$(dirname "$0")/.." && pwd)
ck_step() {  # the step a store checkpoint was saved at; -1 when it is damaged or not one
  "${PYTHON:-python3}" -c 'import sys; sys.path.insert(0, sys.argv[1])
from memgen.checkpoint import checked_load
try:
    print(int(checked_load(sys.argv[2])["step"]))
except Exception:
    print(-1)' "$REPO" "$1" 2>/dev/null || echo -1
}
# checkpoints carried from the last call: parts .00, .01, ... joined in order into the store;
# they are dated before this call, so that the end can tell which ones no batch resumed
restored=()
for first in "$CKPT_IN"/ck-*.pt.00; do
  [ -e "$first" ] || break
  base=${first%.00}; name=$(basename "$base"); name=${name#ck-}; dest="$MEMGEN_STORE/checkpoints/$name"
  mkdir -p "$MEMGEN_STORE/checkpoints" && : > "$dest.part" || exit 1
  i=0
  while [ -e "$base.$(printf %02d $i)" ]; do cat "$base.$(printf %02d $i)" >> "$dest.part" || exit 1; i=$((i + 1)); done
  extra=$(ls "$base".[0-9][0-9] | wc -l)
  [ "$extra" -eq "$i" ] || echo "== checkpoint $name: parts .00-.$(printf %02d $((i - 1))) joined, $((extra - i)) more after a gap ignored"
  if [ -e "$dest" ]; then  # a machine still warm from the last call: keep the later of the two
    have=$(ck_step "$dest"); got=$(ck_step "$dest.part")
    if [ "$have" -ge 0 ] && [ "$have" -ge "$got" ]; then
      rm -f "$dest.part"; echo "== checkpoint $name: the store's copy (step $have) is not older than $CKPT_IN's (step $got): kept"
      restored+=("$dest"); continue  # dated before this call too: the end says if no batch resumed it
    fi
  fi
  mv "$dest.part" "$dest" && touch -d "@$((T0 - 1))" "$dest" && restored+=("$dest")
  echo "== checkpoint $name restored from $i part(s) in $CKPT_IN ($(wc -c < "$dest") bytes)"
done
if ls .whl/*.whl >/dev/null 2>&1; then  # installed next to the wheels (.whl/ is git-ignored)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .whl/site .whl/*.whl || exit 1
  export PYTHONPATH="$PWD/.whl/site"
fi
# eager steps unless MEMGEN_COMPILE=1 comes in: set it only after `benchmarks/bench_step.py --device cuda
# --check` has passed on this card (and a compiled step's first calls cost tens of seconds of compiling)
export PYTHONUNBUFFERED=1 MEMGEN_COMPILE=${MEMGEN_COMPILE:-0} MEMGEN_PAD_WIDTHS=${MEMGEN_PAD_WIDTHS:-0}
[ -z "$STEPS" ] || nvidia-smi -L 2>/dev/null || echo "nvidia-smi: none (no NVIDIA card?)"
step() {  # step MINUTES PROFILE GROUP...
  local l; l=$(left); [ "$l" -gt 20 ] || { echo "skip $*: no time left"; return; }
  echo "== $(date +%T) ${l}s left: produce $*"
  # SIGINT at the budget (finished batches are kept), SIGKILL 20 s later if that is not heeded;
  # progress-bar redraws are dropped from the log, everything else streams through
  timeout -k 20 -s INT "$l" "${PYTHON:-python3}" -m memgen produce --device "${DEV:-cuda}" --max-minutes "$1" --profile "$2" \
    --batch-neurons "$BATCH_NEURONS" $PRODUCE_ARGS --groups "${@:3}" 2>&1 | tr '\r' '\n' \
    | grep --line-buffered -v -E '(step/s|s/step|it/s|s/it)\]$|^[[:space:]]*$'
  return 0
}
for s in $STEPS; do  # a STEPS item "A+B+..." runs its steps at the same time, each line tagged [i]
  IFS='+' read -ra par <<< "$s"
  if [ "${#par[@]}" -eq 1 ]; then step ${s//,/ }; continue; fi
  for i in "${!par[@]}"; do (step ${par[$i]//,/ } 2>&1 | sed -u "s/^/[$i] /") & done
  wait
done
mkdir -p "$OUT" || exit 1
folders=$(for d in results/paper results/paper20k; do [ -d "$d" ] && echo "$d"; done)
if [ -n "$folders" ]; then tar czf "$OUT/results.tgz" $folders || exit 1; else echo "== no results/ folder: no results.tgz"; fi
# checkpoints of unfinished batches, newest first, in parts: 7 files and MAX_SEND_BYTES at most
files=0; bytes=0
while IFS= read -r ck; do
  size=$(wc -c < "$ck"); parts=$(( (size + PART_BYTES - 1) / PART_BYTES )); tag=$(basename "$ck")
  if [ $((files + parts)) -gt 7 ] || [ $((bytes + size)) -gt "$MAX_SEND_BYTES" ]; then
    echo "== checkpoint $tag not sent: $parts part(s), $size bytes would pass the 8 files or the $MAX_SEND_BYTES bytes sent back (a lower BATCH_NEURONS makes smaller checkpoints for batches not begun yet)"
    continue
  fi
  split -b "$PART_BYTES" -d -a 2 "$ck" "$OUT/ck-$tag." || exit 1
  files=$((files + parts)); bytes=$((bytes + size))
  echo "== checkpoint $tag sent as $parts part(s): rm -rf .ckpt && mkdir .ckpt && cp <files_at>/ck-*.pt.* .ckpt/, and carry .ckpt"
done < <(ls -t "$MEMGEN_STORE"/checkpoints/*.pt 2>/dev/null)
for ck in "${restored[@]}"; do
  [ -e "$ck" ] && [ "$(stat -c %Y "$ck")" -lt "$T0" ] && echo "== checkpoint $(basename "$ck") is as restored: no batch" \
    "resumed it in this call, or none reached its next checkpoint (a batch planned differently starts over)"
done
echo "== done after $(( $(date +%s) - T0 ))s"
