#!/usr/bin/env bash
# One command that checks rigl_jax on an accelerator machine, in parts that
# each have a time budget, writing what each part measured as it ends.
#
#   bash scripts/gpu_check.sh [--smoke] [--out DIR] [--wheels DIR] \
#       [--cifar_dir DIR] [--cifar_archive FILE]
#
# 1. install: the wheels in --wheels (without their dependencies), then the
#    project itself without dependencies: the machine's JAX is kept;
# 2. env: jax.devices() and the versions;
# 3. steps: the top-k selection of mask updates; every method's train step
#    against dense, one RigL update and memory, on WRN-22-2 (batch 128) and
#    ResNet-50 (batch 256, 224px, bf16);
# 4. end_to_end: a short CIFAR-10 WRN-22-2 job against its bare steps;
# 5. tests: the fast test subset, less the tests marked cpu_only.
#
# Results go to --out (default $OUT, else /tmp/gpu_check): PART.md,
# PART.json and PART.log per part, and gpu_check.md joining them, rewritten
# after every part, so a kill loses at most the running part. --smoke
# shrinks every workload to a CPU's size (about two minutes on 2 cores,
# most of it compilation). --cifar_archive FILE (a tar of
# the train/ and test/ folders of the JPEG zip, compressed or not) rebuilds
# cifar10-jpg.zip in --cifar_dir first: the same JPEG bytes in fewer bytes
# to carry. Budgets (seconds) come from BUDGET_STEPS, BUDGET_E2E and
# BUDGET_TESTS; the defaults keep the whole check under 9 minutes.
# Compiled programs are cached in JAX_COMPILATION_CACHE_DIR (default
# /tmp/rigl_jax_compile_cache, not with --smoke): the end-to-end part's
# bare steps reuse its job's, and a second check on the same machine
# compiles little.
set -uo pipefail

smoke=0
out=${OUT:-/tmp/gpu_check}
wheels=''
cifar_dir=''
cifar_archive=''
# fail MESSAGE [STATUS]: one line on stderr, as the other command lines.
fail() { echo "gpu_check.sh: $1" >&2; exit "${2:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift; continue ;;
    --out | --wheels | --cifar_dir | --cifar_archive)
      [ $# -ge 2 ] || fail "$1 needs a value" ;;
    *) fail "unknown argument $1" ;;
  esac
  case "$1" in
    --out) out=$2 ;;
    --wheels) wheels=$2 ;;
    --cifar_dir) cifar_dir=$2 ;;
    --cifar_archive) cifar_archive=$2 ;;
  esac
  shift 2
done
# Missing inputs stop the check now, not inside its first part.
[ -z "$wheels" ] || [ -d "$wheels" ] ||
  fail "--wheels $wheels: no such directory" 1
[ -z "$cifar_archive" ] || [ -f "$cifar_archive" ] ||
  fail "--cifar_archive $cifar_archive: no such file" 1
# Paths given are relative to where the script is called from; the parts
# run in the repository's root.
out=$(realpath -m "$out")
[ -z "$wheels" ] || wheels=$(realpath -m "$wheels")
[ -z "$cifar_archive" ] || cifar_archive=$(realpath -m "$cifar_archive")
[ -z "$cifar_dir" ] || cifar_dir=$(realpath -m "$cifar_dir")
cd "$(dirname "$0")/.." || exit
cifar_dir=${cifar_dir:-$(realpath -m ../shared/data/cifar10)}
mkdir -p "$out"
python=${PYTHON:-python3}
summary="$out/gpu_check.md"
if [ "$smoke" = 1 ]; then
  smoke_flag=--smoke
  budget_tests=${BUDGET_TESTS:-0}
  budget_steps=${BUDGET_STEPS:-600}
  budget_e2e=${BUDGET_E2E:-600}
else
  smoke_flag=''
  budget_steps=${BUDGET_STEPS:-330}
  budget_e2e=${BUDGET_E2E:-120}
  budget_tests=${BUDGET_TESTS:-60}
fi
# Several processes may share one accelerator: none takes it all at start.
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
[ "$smoke" = 1 ] ||
  export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/rigl_jax_compile_cache}

{
  echo "# Accelerator check"
  echo
  echo "\`scripts/gpu_check.sh$([ "$smoke" = 1 ] && echo ' --smoke')\`, $(date -u +%Y-%m-%dT%H:%MZ)."
  echo
  echo "| part | exit | seconds | budget |"
  echo "|---|---|---|---|"
} >"$out/parts.md"

join_results() {
  {
    cat "$out/parts.md"
    for name in env steps end_to_end tests; do
      [ -f "$out/$name.md" ] && { echo; cat "$out/$name.md"; }
    done
  } >"$summary"
}

# part NAME BUDGET COMMAND...: runs COMMAND (a program or a function of
# this script), stopped after BUDGET seconds.
part() {
  local name=$1 budget=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $name (budget ${budget} s)"
  timeout --kill-after=15 "$budget" bash -c '"$@"' part "$@" \
    >"$out/$name.log" 2>&1
  rc=$?
  [ $rc = 124 ] && rc='124 (budget spent)'
  echo "| $name | $rc | $(($(date +%s) - start)) | $budget |" >>"$out/parts.md"
  tail -n 5 "$out/$name.log"
  join_results
}

install_part() {
  if [ -n "$wheels" ]; then
    "$python" -m pip install -q --no-index --no-deps "$wheels"/*.whl || return
  fi
  # Installed already (CI, a second check): nothing to do.
  (cd / && "$python" -c 'import rigl_jax' 2>/dev/null) ||
    "$python" -m pip install -q --no-deps --no-build-isolation -e . || return
  if [ -n "$cifar_archive" ]; then
    "$python" scripts/cifar10_archive.py unpack "$cifar_archive" \
      "$cifar_dir/cifar10-jpg.zip" || return
  fi
}

export python out wheels cifar_dir cifar_archive
export -f install_part
part install 120 install_part
part env 60 "$python" -m benchmarks.gpu_check --part=env --out="$out" \
  $smoke_flag
part steps "$budget_steps" "$python" -m benchmarks.gpu_check --part=steps \
  --out="$out" $smoke_flag
part end_to_end "$budget_e2e" "$python" -m benchmarks.gpu_check \
  --part=end_to_end --out="$out" --cifar_dir="$cifar_dir" $smoke_flag
if [ "$budget_tests" -gt 0 ]; then
  # -v names each test as it ends: a run cut short still names failures.
  part tests "$budget_tests" "$python" -m pytest -v -n 8 \
    -m 'not slow and not cpu_only' -p no:cacheprovider -p no:benchmark \
    --continue-on-collection-errors tests
  # Counts of what ended, the failures by name, and the log's last line.
  {
    echo '### Fast tests'
    echo
    echo '```'
    for outcome in PASSED FAILED ERROR SKIPPED; do
      echo "$outcome: $(grep -c " $outcome " "$out/tests.log")"
    done
    grep -E ' (FAILED|ERROR) ' "$out/tests.log" | head -n 40
    tail -n 1 "$out/tests.log"
    echo '```'
  } >"$out/tests.md"
  join_results
fi
echo "gpu_check: results in $summary"
