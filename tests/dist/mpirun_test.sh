#!/usr/bin/env bash
# Runs one MPI test: `mpirun -np NP PROGRAM ARGS...` under a 60 s timeout with no stdin, then
# checks its exit status and output.
#   usage: mpirun_test.sh [--expect-fail] [--expect REGEX]... [--reject REGEX]... -- NP PROGRAM [ARGS...]
#   --expect-fail   the job must exit non-zero (and not by the timeout: that is a hang)
#   --expect RE     the combined output must match the extended regex RE (grep -E)
#   --reject RE     ... must not match RE
# mpirun runs as root here (OMPI_ALLOW_RUN_AS_ROOT*), may start more ranks than cores
# (oversubscribe: OpenMPI then yields while it waits), one OpenMP thread per rank, no binding.
set -u
expect_fail=0
expects=()
rejects=()
while (($#)); do
  case "$1" in
    --expect-fail) expect_fail=1; shift ;;
    --expect) expects+=("$2"); shift 2 ;;
    --reject) rejects+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "mpirun_test.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
np=$1; shift
mpirun=${KRILL_MPIEXEC:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s%N)
timeout -k 5 60 "$mpirun" -np "$np" --bind-to none "$@" < /dev/null > "$out" 2>&1
status=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$out"
echo "---- mpirun -np $np: exit status $status after ${elapsed_ms} ms"
fail=0
if ((status == 124 || status == 137)); then
  echo "FAIL: the job did not end within 60 s (a hang)"; exit 1
fi
if ((expect_fail)); then
  ((status != 0)) || { echo "FAIL: the job succeeded but a failure was expected"; fail=1; }
else
  ((status == 0)) || { echo "FAIL: exit status $status"; fail=1; }
fi
for re in "${expects[@]}"; do
  grep -Eq -- "$re" "$out" || { echo "FAIL: no output matches: $re"; fail=1; }
done
for re in "${rejects[@]}"; do
  if grep -Eq -- "$re" "$out"; then echo "FAIL: output matches: $re"; fail=1; fi
done
exit $fail
