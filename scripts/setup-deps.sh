#!/usr/bin/env bash
# Installs the Debian 12 packages krill needs to build (and, with --tests, to run its tests:
# PyTorch is the tests' oracle). Runs unattended; uses sudo only when not root; does nothing
# (quickly) when everything is already installed.
#   usage: scripts/setup-deps.sh [--tests]
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libdnnl-dev libopenblas-openmp-dev    # oneDNN; OpenBLAS built with OpenMP (one thread pool)
  libcli11-dev nlohmann-json3-dev libstb-dev libtomlplusplus-dev
  libsqlite3-dev zlib1g-dev libplplot-dev plplot-driver-cairo
  libopenmpi-dev openmpi-bin           # MPI: krill::dist's CPU transport and mpirun
  libgtest-dev libgmock-dev
)
for arg in "$@"; do
  case "$arg" in
    --tests) packages+=(python3 python3-torch python3-numpy python3-pandas python3-sklearn strace iproute2) ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup-deps: unknown argument '$arg' (usage: $0 [--tests])" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)
echo "setup-deps: installing ${missing[*]}"
"${apt[@]}" update
"${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null
echo "setup-deps: done"
