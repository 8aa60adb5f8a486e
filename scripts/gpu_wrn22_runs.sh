#!/usr/bin/env bash
# Carries the full-length CIFAR-10 WRN-22-2 runs (experiments/cifar10_wrn22_2.py)
# forward on one GPU for a time budget, then packs their workdirs so that
# the next machine continues them exactly.
#
#   bash scripts/gpu_wrn22_runs.sh SECONDS ROOT OUT_DIR [PACKED_PARTS...]
#
# - PACKED_PARTS: the runs.tar.xz.* pieces an earlier call wrote; unpacked
#   into ROOT when ROOT holds no runs yet.
# - PARALLEL (default 5) runs share the GPU, MAX_RUNS (default 5: the 90%
#   runs) are taken in the experiment's order, after ONLY (key=value pairs,
#   space-separated, e.g. 'method=rigl seed=0') selects; CIFAR_DIR holds
#   cifar10-jpg.zip (default ../shared/data/cifar10); SWEEP_SET adds
#   key=value overrides to every run (space-separated; tests shrink the
#   model with it).
# - After SECONDS the runs write a checkpoint and stop (scripts/sweep.py
#   --time_budget); the workdirs, less the compilation cache, go to
#   OUT_DIR/runs.tar.xz.aa, .ab, ... (15 MiB pieces) and each run's eval
#   history and provenance to OUT_DIR/progress.md.
set -uo pipefail
# fail MESSAGE [STATUS]: one line on stderr, as the other command lines.
fail() { echo "gpu_wrn22_runs.sh: $1" >&2; exit "${2:-2}"; }
[ $# -ge 3 ] || fail "usage: bash scripts/gpu_wrn22_runs.sh SECONDS ROOT \
OUT_DIR [PACKED_PARTS...] (see the comment at its top)"
[[ $1 =~ ^[0-9]+([.][0-9]*)?$ ]] ||
  fail "SECONDS must be a number of seconds, got '$1'"
# Paths are relative to where the script is called from.
seconds=$1 root=$(realpath -m "$2") out=$(realpath -m "$3")
shift 3
parts=()
for part in "$@"; do
  [ -f "$part" ] || fail "$part: no such file (a packed part)" 1
  parts+=("$(realpath -m "$part")")
done
cifar_dir=$(realpath -m "${CIFAR_DIR:-$(dirname "$0")/../../shared/data/cifar10}")
cd "$(dirname "$0")/.." || exit
python=${PYTHON:-python3}
mkdir -p "$root" "$out"
if [ ${#parts[@]} -gt 0 ] && [ ! -d "$root/cifar10_wrn22_2" ]; then
  cat "${parts[@]}" | xz -d | tar -C "$root" -xf - || exit
fi
# Steps compiled once are reused by the next call on the same machine.
export JAX_COMPILATION_CACHE_DIR="$root/.jax_cache"
"$python" scripts/sweep.py experiments/cifar10_wrn22_2.py --root="$root" \
  --set=dataset.local_dir="$cifar_dir" \
  --set=keep_checkpoints=1 --run --parallel="${PARALLEL:-5}" \
  --max_runs="${MAX_RUNS:-5}" --time_budget="$seconds" \
  $(for kv in ${SWEEP_SET:-}; do echo "--set=$kv"; done) \
  $(for kv in ${ONLY:-}; do echo "--only=$kv"; done)
tar -C "$root" -cf - --exclude=.jax_cache . | xz -T0 -3 |
  split -b 15M - "$out/runs.tar.xz."
"$python" scripts/run_progress.py "$root/cifar10_wrn22_2" >"$out/progress.md"
cat "$out/progress.md"
