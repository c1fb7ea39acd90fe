#!/usr/bin/env bash
# Build and run the C example: compile the model and its header with tensorc, then link with cc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build}"
mkdir -p "$out"
python3 -m tensorc compile "$here/../mlp.tc" -o "$out/libmlp.so"
python3 -m tensorc compile "$here/../mlp.tc" --emit=header -o "$out/mlp.h"
cc -std=c99 -O2 -Wall -Wextra -I "$out" "$here/main.c" -L "$out" -lmlp -Wl,-rpath,"$out" -o "$out/mlp_demo"
"$out/mlp_demo"
