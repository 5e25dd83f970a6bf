#!/usr/bin/env bash
# Builds .device/ for a run on the GPU machine (../shared/device/prepare.sh),
# then shrinks it under the 64 MiB that a run may carry with the working tree:
# js-tiktoken (22 MB, not needed by benchmarks on presets) is dropped and
# Dawn's binary is stripped and xz-compressed. A device command then starts
#   source .device/setup.sh && bash .device/unpack.sh && ...
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
bash ../shared/device/prepare.sh
rm -rf .device/node_modules/js-tiktoken
dawn=.device/node_modules/webgpu/dist/linux-x64/dawn.node
strip --strip-unneeded "$dawn"
xz -T2 -9 -c "$dawn" > .device/dawn.node.xz
rm "$dawn"
cat > .device/unpack.sh <<'UNPACK'
set -e
target=node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$target" ] || xz -dc .device/dawn.node.xz > "$target"
UNPACK
du -sh .device
