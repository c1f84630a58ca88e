#!/usr/bin/env bash
# The penguin lab end to end: install the dependencies, build krill (Release, in build/), then
# do the lab's steps with the krill command on the bundled raw data/penguins.csv:
#   prepare + train 100 epochs (examples/penguins.toml), show the weights (krill inspect),
#   predict the new penguin from its encoded features and from its raw values (krill predict),
#   and list the runs recorded so far in ./krill-runs/runs.db (krill runs list; krill ui shows them).
# Extra arguments go to `krill train` (e.g. --verbose). KRILL_BUILD_DIR picks another build
# directory.
#   usage: scripts/run-lab.sh [krill train options...]
set -euo pipefail
cd "$(dirname "$0")/.."

build="${KRILL_BUILD_DIR:-build}"
bash scripts/setup-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"

out=runs/penguins
echo "== krill train --config examples/penguins.toml (the lab's preparation and training)"
"$build/krill" train --config examples/penguins.toml --out "$out" --force "$@"
if [[ ! -f "$out/model.safetensors" ]]; then
  echo "run-lab: krill train wrote no model to $out" >&2
  exit 1
fi
echo
echo "== krill inspect $out (layers, preparation, learned weights and biases)"
"$build/krill" inspect "$out"
echo
echo "== krill predict: the new penguin [1, 50.4, 15.3, 20, 50] (encoded) and Dream,50.4,15.3,200,5000 (raw)"
"$build/krill" predict "$out" --features "1,50.4,15.3,20,50"
"$build/krill" predict "$out" --row "Dream,50.4,15.3,200,5000"
echo
echo "== krill runs list (every krill train is recorded in ./krill-runs/runs.db; krill ui serves a dashboard)"
"$build/krill" runs list --experiment Default
echo
echo "run-lab: done; outputs in $(pwd)/$out:"
ls -l "$out"
echo "  model.safetensors  weights (PyTorch state-dict names: fc1.weight, fc1.bias, ...)"
echo "  config.json        architecture, feature preparation, classes, training options"
echo "  metrics.csv        epoch, train_loss, val_loss, val_accuracy, ..."
echo "  loss.png           training and validation loss against epoch"
