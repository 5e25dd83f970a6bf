#!/bin/bash
# The device command that trains the shipped models (device time is scarce,
# so the jobs share the GPU as concurrent processes). JOBS picks them:
#   lm     the Brown language model       -> $OUT/metala-brown
#   mqar   the MQAR model, d 128, len 512 -> $OUT/mqar-...
# carry: build (build/brown from tools/brown/prepare_brown.mjs, build/mqar
# from `metala mqar --write-set`). The model folders come back packed in
# $OUT/results.tar (the device tool returns few files); logs in $OUT/*.log.
set -u
: "${OUT:?}"
cd "$(dirname "$0")/../.."
JOBS=${JOBS:-lm mqar}
SECONDS_LM=${SECONDS_LM:-270}
SECONDS_MQAR=${SECONDS_MQAR:-240}
MQAR_LRS=${MQAR_LRS:-1e-2}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, tokenizers; print('torch', torch.__version__, 'tokenizers', tokenizers.__version__)"
case " $JOBS " in *" lm "*)
  python3 tools/train/train_lm.py --data build/brown --sample models/metala-brown/heldout-sample.txt \
    --out "$OUT/metala-brown" --seconds "$SECONDS_LM" --max-steps 2500 > "$OUT/lm.log" 2>&1 & ;;
esac
case " $JOBS " in *" mqar "*)
  for lr in $MQAR_LRS; do
    python3 tools/train/train_mqar.py --set build/mqar/set-v8192-l512-kv64-s0.json --out "$OUT/mqar-d128-l512-lr$lr" \
      --d 128 --lr "$lr" --seconds "$SECONDS_MQAR" > "$OUT/mqar-lr$lr.log" 2>&1 &
  done ;;
esac
wait
for f in "$OUT"/*.log; do echo "== $f"; grep -v "^step" "$f" | tail -n 8; grep "^step" "$f" | tail -n 4; done
tar -C "$OUT" -cf "$OUT/results.tar" $(cd "$OUT" && ls -d */)
