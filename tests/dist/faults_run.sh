#!/usr/bin/env bash
# Runs one fault test: `mpirun -np NP PROGRAM ARGS...` with no stdin under a hard timeout (a job
# still running then is a hang: the test fails), and checks that the job failed (non-zero exit),
# within WITHIN seconds, with output matching every --expect.
#   usage: faults_run.sh [--within S] [--kill-rank R --piddir DIR] [--expect RE]... [--reject RE]...
#                        -- NP PROGRAM [ARGS...]
#   --within S      the job must have ended within S seconds (default 30)
#   --kill-rank R   once DIR/rank<R>.pid exists (PROGRAM writes it), wait 0.5 s, then kill that
#                   process with SIGKILL from outside
#   --expect RE     the combined output must match the extended regex RE (grep -E)
#   --reject RE     ... must not match RE
set -u
within=30
kill_rank=""
piddir=""
expects=()
rejects=()
while (($#)); do
  case "$1" in
    --within) within=$2; shift 2 ;;
    --kill-rank) kill_rank=$2; shift 2 ;;
    --piddir) piddir=$2; shift 2 ;;
    --expect) expects+=("$2"); shift 2 ;;
    --reject) rejects+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "faults_run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
np=$1; shift
mpirun=${KRILL_MPIEXEC:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [[ -n "$piddir" ]]; then rm -rf "$piddir"; mkdir -p "$piddir"; fi
hard=$((within + 30))
start=$(date +%s%N)
timeout -k 5 "$hard" "$mpirun" -np "$np" --bind-to none "$@" < /dev/null > "$out" 2>&1 &
job=$!
if [[ -n "$kill_rank" ]]; then
  pidfile=$piddir/rank$kill_rank.pid
  for _ in $(seq 300); do [[ -s $pidfile ]] && break; kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
  if [[ -s $pidfile ]]; then
    sleep 0.5
    victim=$(cat "$pidfile")
    echo "faults_run.sh: kill -KILL $victim (rank $kill_rank)" >> "$out"
    kill -KILL "$victim"
    kill_ns=$(date +%s%N)
  else
    echo "FAIL: rank $kill_rank never wrote $pidfile"
  fi
fi
wait "$job"
status=$?
end=$(date +%s%N)
elapsed_ms=$(( (end - start) / 1000000 ))
cat "$out"
echo "---- mpirun -np $np: exit status $status after ${elapsed_ms} ms${kill_ns:+ ($(( (end - kill_ns) / 1000000 )) ms after the kill)}"
fail=0
# timeout says 124 (or 137 after -k); a rank killed by SIGKILL also makes mpirun exit 137, so a
# hang is told by the time.
if ((status == 124 || elapsed_ms >= hard * 1000)); then
  echo "FAIL: the job did not end within $hard s (a hang)"; exit 1
fi
((status != 0)) || { echo "FAIL: the job succeeded but a failure was expected"; fail=1; }
((elapsed_ms <= within * 1000)) || { echo "FAIL: the job took ${elapsed_ms} ms, more than ${within} s"; fail=1; }
for re in "${expects[@]}"; do
  grep -Eq -- "$re" "$out" || { echo "FAIL: no output matches: $re"; fail=1; }
done
for re in "${rejects[@]}"; do
  if grep -Eq -- "$re" "$out"; then echo "FAIL: output matches: $re"; fail=1; fi
done
exit $fail
