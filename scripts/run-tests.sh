#!/usr/bin/env bash
# Installs the dependencies (with PyTorch, the tests' oracle), builds krill with its tests
# (Release, in build/) and runs the whole suite with CTest. Exits with CTest's code.
#   usage: scripts/run-tests.sh [extra ctest arguments, e.g. -R tensor or -L install]
# Environment: KRILL_BUILD_DIR (default build), KRILL_TEST_JOBS (parallel tests, default 2),
# KRILL_TEST_TIMEOUT (seconds for the whole suite, default 1500). OMP_NUM_THREADS defaults to 1
# here, unless already set: tests run in parallel on few cores, and an oversubscribed OpenMP
# pool spins.
set -euo pipefail
cd "$(dirname "$0")/.."

build="${KRILL_BUILD_DIR:-build}"
start=$SECONDS
stage=setup
summary() {
  local rc=$?
  if ((rc == 0)); then
    echo "run-tests: PASSED in $((SECONDS - start))s"
  elif [[ "$stage" == ctest && "$rc" == 124 ]]; then
    echo "run-tests: FAILED: the suite ran past ${KRILL_TEST_TIMEOUT:-1500}s ($((SECONDS - start))s in all)"
  else
    echo "run-tests: FAILED at $stage (exit $rc) after $((SECONDS - start))s"
  fi
}
trap summary EXIT

bash scripts/setup-deps.sh --tests
stage=configure
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DKRILL_BUILD_TESTS=ON
stage=build
cmake --build "$build" -j"$(nproc)"

stage=ctest
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
timeout --kill-after=30 "${KRILL_TEST_TIMEOUT:-1500}" \
  ctest --test-dir "$build" --output-on-failure -j"${KRILL_TEST_JOBS:-2}" "$@"
