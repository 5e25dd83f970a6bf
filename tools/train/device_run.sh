#!/bin/bash
# The one device command that trains both shipped models at once (device
# time is scarce): the Brown language model and two MQAR candidates, as three
# processes sharing the GPU. Everything lands in $OUT; logs in $OUT/*.log.
#   carry: build (build/brown from tools/brown/prepare_brown.mjs, build/mqar
#   from `metala mqar --write-set`)
set -u
: "${OUT:?}"
cd "$(dirname "$0")/../.."
SECONDS_LM=${SECONDS_LM:-300}
SECONDS_MQAR=${SECONDS_MQAR:-300}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, tokenizers; print('torch', torch.__version__, 'tokenizers', tokenizers.__version__)"
python3 tools/train/train_lm.py --data build/brown --sample models/metala-brown/heldout-sample.txt \
  --out "$OUT/metala-brown" --seconds "$SECONDS_LM" --max-steps 2500 > "$OUT/lm.log" 2>&1 &
python3 tools/train/train_mqar.py --set build/mqar/set-v8192-l512-kv64-s0.json --out "$OUT/mqar-d128-l512" \
  --d 128 --seconds "$SECONDS_MQAR" > "$OUT/mqar-d128.log" 2>&1 &
python3 tools/train/train_mqar.py --set build/mqar/set-v8192-l256-kv64-s0.json --out "$OUT/mqar-d256-l256" \
  --d 256 --seconds "$SECONDS_MQAR" > "$OUT/mqar-d256.log" 2>&1 &
wait
for f in "$OUT"/*.log; do echo "== $f"; grep -v "^step" "$f" | tail -n 12; grep "^step" "$f" | tail -n 3; done
