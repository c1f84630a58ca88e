#!/usr/bin/env bash
# Installs the Debian 12 packages krill needs to build (and, with --tests, to run its tests:
# PyTorch is the tests' oracle, Chromium drives the dashboard's browser test), then the
# dashboard's front-end packages from npm (web/package-lock.json; embedded into the krill binary
# at build time). Runs unattended; uses sudo only when not root; does nothing (quickly) when
# everything is already installed.
#   usage: scripts/setup-deps.sh [--tests]
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libdnnl-dev libopenblas-openmp-dev    # oneDNN; OpenBLAS built with OpenMP (one thread pool)
  libcli11-dev nlohmann-json3-dev libstb-dev libtomlplusplus-dev
  libsqlite3-dev zlib1g-dev libplplot-dev plplot-driver-cairo
  libcpp-httplib-dev                   # the dashboard's web server (krill ui)
  libopenmpi-dev openmpi-bin           # MPI: krill::dist's CPU transport and mpirun
  libgtest-dev libgmock-dev
)
tests=0
command -v npm >/dev/null || packages+=(npm)   # Node.js may come from elsewhere (nodesource) with npm
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1
             packages+=(python3 python3-torch python3-numpy python3-pandas python3-sklearn strace iproute2
                        chromium dataset-fashion-mnist python3-torchvision) ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup-deps: unknown argument '$arg' (usage: $0 [--tests])" >&2; exit 2 ;;
  esac
done

# The dashboard's front-end packages (npm ci: exactly the lock file's versions). The test set-up
# adds the dev dependencies (playwright-core drives Debian's Chromium; it downloads no browser).
install_web() {
  local web
  web="$(cd "$(dirname "$0")/.." && pwd)/web"
  [[ -f "$web/package-lock.json" ]] || return 0
  local want="prod"; ((tests)) && want="dev"
  if [[ -f "$web/node_modules/.krill-installed" && "$(cat "$web/node_modules/.krill-installed")" == "$want" &&
        "$web/node_modules/.krill-installed" -nt "$web/package-lock.json" ]]; then
    echo "setup-deps: web/node_modules up to date"
    return 0
  fi
  echo "setup-deps: npm ci in web/ ($want)"
  if ((tests)); then
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
  else
    (cd "$web" && npm ci --omit=dev --no-audit --no-fund --loglevel=error </dev/null)
  fi
  echo "$want" >"$web/node_modules/.krill-installed"
}

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#packages[@]} packages already installed"
  install_web
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
install_web
echo "setup-deps: done"
