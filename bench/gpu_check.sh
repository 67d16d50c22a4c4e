#!/bin/bash
# The GPU checks, in one call of a lent GPU machine (the device tool), and what they need.
#
#   bash bench/gpu_check.sh prepare   # here: the wheels the GPU machine's image lacks into
#                                     # .whl/, the shared clips (no MP3: PyAV is too large to
#                                     # carry) into bench/.gpu/audio; both git-ignored
#   bash bench/gpu_check.sh run       # there (carry .whl and bench/.gpu), ~9 minutes: the
#                                     # padded forward's parity and speed, bench_transcribe and
#                                     # bench_train on CUDA, the CPU side, profiles;
#                                     # logs under $OUT, most needed first (a call stops at
#                                     # 600 s; the logs of what finished come back)
#
# The machine's image has torch, transformers, peft, accelerate and onnxruntime (KINDS.md of the
# device tool); the versions below are constraints.txt's.
set -o pipefail
cd "$(dirname "$0")/.."
case "$1" in
prepare)
    exclude=$(git rev-parse --git-path info/exclude)
    for p in /.whl/ /bench/.gpu/; do grep -qx "$p" "$exclude" || echo "$p" >>"$exclude"; done
    pins=$(grep -iE '^(soundfile|soxr|jiwer|cffi|pycparser|silero-vad|rapidfuzz|opencc)==' constraints.txt)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $pins
    rm -rf bench/.gpu/audio && mkdir -p bench/.gpu/audio
    src=../shared/audio
    { head -1 $src/manifest.tsv; awk -F'\t' 'NR > 1 && $1 ~ /\.(wav|flac)$/' $src/manifest.tsv; } \
        >bench/.gpu/audio/manifest.tsv
    tail -n +2 bench/.gpu/audio/manifest.tsv | cut -f1 | xargs -I{} cp $src/{} bench/.gpu/audio/
    du -sh .whl bench/.gpu
    ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
    OUT=${OUT:-/tmp/gpu-check}
    mkdir -p "$OUT"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    quiet() { grep -v "Loading weights\|Writing model"; }
    timeout 200 python3 bench/bench_transcribe.py --device cuda --minutes 60 --uneven \
        --sides pipeline,pipeline-best,tingxie,tingxie-no-cuts --audio-dir bench/.gpu/audio 2>&1 |
        quiet | tee "$OUT/transcribe.log"
    # the same file at a trained model's density of characters (random weights emit ~5x more)
    timeout 120 python3 bench/bench_transcribe.py --device cuda --minutes 60 --uneven \
        --sides tingxie --density trained --audio-dir bench/.gpu/audio 2>&1 | quiet |
        tee "$OUT/transcribe-trained-density.log"
    timeout 60 python3 bench/bench_transcribe.py --device cuda --forward-only 2>&1 | quiet |
        tee "$OUT/forward.log"
    timeout 240 python3 bench/bench_train.py --device cuda --size full --clips 512 \
        --clip-chars 20,100 --char-seconds 0.1 --batch 16 --micro-seconds 120 --epochs 2 \
        --variants hf,hf-ckpt,tingxie,tingxie-nocache 2>&1 | quiet | tee "$OUT/train.log"
    # what limits transcription besides the model, on this host's CPU (a trained model's
    # density and the random weights'), and Tingxie's job at half the audio a micro-batch
    # (its memory against the Trainer's 60 % target)
    timeout 60 python3 bench/bench_transcribe.py --cpu-side --minutes 10 \
        --audio-dir bench/.gpu/audio 2>&1 | quiet | tee "$OUT/cpu-side.log"
    # where a file's and a training step's time go on the device (torch.profiler tables)
    timeout 60 python3 bench/bench_transcribe.py --device cuda --minutes 2 --uneven \
        --sides tingxie --profile --audio-dir bench/.gpu/audio 2>&1 | quiet |
        tee "$OUT/transcribe-profile.log"
    timeout 90 python3 bench/bench_train.py --device cuda --size full --clips 64 \
        --clip-chars 20,100 --char-seconds 0.1 --batch 16 --micro-seconds 120 --epochs 2 \
        --variants hf,tingxie --profile-steps 2 2>&1 | quiet | tee "$OUT/train-profile.log"
    timeout 100 python3 bench/bench_train.py --device cuda --size full --clips 512 \
        --clip-chars 20,100 --char-seconds 0.1 --batch 16 --micro-seconds 60 --epochs 2 \
        --variants tingxie 2>&1 | quiet | tee "$OUT/train-micro60.log"
    ;;
*)
    echo "usage: bash bench/gpu_check.sh prepare|run" >&2
    exit 2
    ;;
esac
