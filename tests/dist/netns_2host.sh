#!/usr/bin/env bash
# A real 2-host krill::dist job on one machine: two network namespaces joined by a veth pair are
# the two hosts, so every byte between the ranks crosses a network interface (OpenMPI's TCP
# transport only: --mca btl tcp,self, no shared memory), started by mpirun from a host list.
#
#   usage: netns_2host.sh MPI_FAULTS [MPI_CHECKS CSV]     (run as root; needs iproute2, mpirun)
#
#   host A = namespace krill_a_<pid>, veth krA<pid> 10.213.77.1/30   (mpirun runs here)
#   host B = namespace krill_b_<pid>, veth krB<pid> 10.213.77.2/30
# The addresses exist only inside these two namespaces, which this script creates and deletes
# (trap). mpirun's rsh agent is a generated wrapper that maps a host address to `ip netns exec
# <namespace> sh -c "<orted command>"` (what ssh would do on a real host). The job runs
# `mpi_faults netcheck 8` (two 8 MB allreduces checked exactly, then DistributedOptimizer steps
# ending in sync) and, when given, `mpi_checks equivalence CSV 2` (N ranks == one process).
# Checks: exit status 0, the ranks' OK lines, local_size 1 on each host, and each veth's tx_bytes
# grew by at least the bytes allreduced (the traffic crossed the interface). Last, rank 1 (host B)
# aborts in the middle of training: the job must end non-zero within 30 s, naming rank 1.
# If namespaces cannot be created here (no CAP_SYS_ADMIN, no iproute2) the test FAILS, saying so.
set -u
faults=$1
checks=${2:-}
csv=${3:-}
mpirun=${KRILL_MPIEXEC:-mpirun}
fail() { echo "FAIL: $*"; exit 1; }
command -v ip > /dev/null || fail "no 'ip' command: install iproute2 (scripts/setup-deps.sh --tests)"
tag=$$
nsa=krill_a_$tag nsb=krill_b_$tag
va=krA$tag vb=krB$tag
ipa=10.213.77.1 ipb=10.213.77.2 net=10.213.77.0/30
tmp=$(mktemp -d)
cleanup() {
  ip netns del "$nsa" 2> /dev/null
  ip netns del "$nsb" 2> /dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$nsa" || fail "'ip netns add' is not permitted here (needs root / CAP_SYS_ADMIN): cannot build the 2-host network"
ip netns add "$nsb" || fail "'ip netns add $nsb' failed"
ip link add "$va" type veth peer name "$vb" || fail "cannot create a veth pair"
ip link set "$va" netns "$nsa" && ip link set "$vb" netns "$nsb" || fail "cannot move the veth ends into the namespaces"
ip -n "$nsa" addr add "$ipa/30" dev "$va" && ip -n "$nsb" addr add "$ipb/30" dev "$vb" || fail "cannot assign addresses"
for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up || fail "cannot bring up lo in $ns"; done
ip -n "$nsa" link set "$va" up && ip -n "$nsb" link set "$vb" up || fail "cannot bring up the veth pair"

# mpirun's rsh agent: `agent [options] HOST COMMAND...` -> the command in HOST's namespace.
cat > "$tmp/rsh" << EOF
#!/bin/sh
while [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1; shift
case "\$host" in
  $ipa) ns=$nsa ;;
  $ipb) ns=$nsb ;;
  *) echo "netns rsh agent: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" /bin/sh -c "\$*" < /dev/null
EOF
chmod +x "$tmp/rsh"

tx() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/tx_bytes"; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
run_job() {  # run_job OUTFILE PROGRAM ARGS...
  local out=$1; shift
  timeout -k 5 60 ip netns exec "$nsa" "$mpirun" -np 2 -H "$ipa:1,$ipb:1" --bind-to none \
    --mca plm_rsh_agent "$tmp/rsh" --mca plm_rsh_no_tree_spawn 1 \
    --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net" \
    "$@" < /dev/null > "$out" 2>&1
  local status=$?
  cat "$out"
  echo "---- exit status $status"
  ((status != 124 && status != 137)) || fail "the job did not end within 60 s (a hang)"
  ((status == 0)) || fail "the job exited with status $status"
}

txa0=$(tx "$nsa" "$va") txb0=$(tx "$nsb" "$vb")
run_job "$tmp/out1" "$faults" netcheck 8
txa1=$(tx "$nsa" "$va") txb1=$(tx "$nsb" "$vb")
bytes=$(sed -n 's/^rank 0: OK netcheck \([0-9]*\) bytes.*/\1/p' "$tmp/out1")
[[ -n "$bytes" ]] || fail "no 'rank 0: OK netcheck' line"
grep -q "^rank 1: OK netcheck .*(2 ranks, 1 local)" "$tmp/out1" || fail "no 'rank 1: OK netcheck ... (2 ranks, 1 local)' line"
grep -q "^rank 0: OK netcheck .*(2 ranks, 1 local)" "$tmp/out1" || fail "rank 0 does not see 1 process on its host"
da=$((txa1 - txa0)) db=$((txb1 - txb0))
echo "veth tx bytes during the job: host A $da, host B $db; allreduced bytes $bytes"
((da >= bytes && db >= bytes)) || fail "less traffic crossed the veth than was allreduced: the ranks did not talk over the network"

if [[ -n "$checks" ]]; then
  run_job "$tmp/out2" "$checks" equivalence "$csv" 2
  grep -q "rank 0: OK equivalence" "$tmp/out2" || fail "no 'rank 0: OK equivalence'"
fi
# A rank that dies on host B ends the job on host A too, within 30 s, naming the rank.
start=$(date +%s)
timeout -k 5 60 ip netns exec "$nsa" "$mpirun" -np 2 -H "$ipa:1,$ipb:1" --bind-to none \
  --mca plm_rsh_agent "$tmp/rsh" --mca plm_rsh_no_tree_spawn 1 \
  --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net" \
  "$faults" train abort 1 50 < /dev/null > "$tmp/out3" 2>&1
status=$? elapsed=$(($(date +%s) - start))
cat "$tmp/out3"
echo "---- exit status $status after $elapsed s"
((status != 0)) || fail "the job with a crashing rank on host B succeeded"
((elapsed <= 30)) || fail "the job with a crashing rank on host B took $elapsed s (more than 30)"
grep -Eq "process rank 1 .*exited on signal 6" "$tmp/out3" || fail "the output does not name rank 1 and its signal"
echo "OK: 2-host job over the veth pair"
