#!/usr/bin/env bash
# The penguin lab end to end: install the dependencies, build krill (Release, in build/), train
# the 5->10->10->3 MLP on the penguin data and say where the results went. Extra arguments go
# to `krill train` (e.g. --verbose). KRILL_BUILD_DIR picks another build directory.
#   usage: scripts/run-lab.sh [krill train options...]
set -euo pipefail
cd "$(dirname "$0")/.."

build="${KRILL_BUILD_DIR:-build}"
bash scripts/setup-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"

out=runs/penguins
"$build/krill" train \
  --train data/penguins_train.csv --validation data/penguins_val.csv --label Species \
  --hidden 10,10 --batch-size 20 --epochs 100 --optimizer adam --lr 0.001 \
  --no-shuffle --seed 0 --out "$out" --force "$@"

if [[ ! -d "$out" ]]; then
  echo "run-lab: krill train wrote nothing to $out" >&2
  exit 1
fi
echo "run-lab: done; outputs in $(pwd)/$out:"
ls -l "$out"
