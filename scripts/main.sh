#!/usr/bin/env bash
# The main job on a fresh machine: install, export VGG-19 with the InterActive graph to ONNX (verified
# against the autograd reference), then run inference on a real photograph.
# Weights: torchvision's cache (~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth) when present, else
# EfficientNet-Lite0 with the real ImageNet weights the setup installs (no weights can be downloaded
# here). WEIGHTS=path picks a VGG-19 file (or WEIGHTS=random).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/interactive-export ] || bash scripts/setup.sh
WEIGHTS=${WEIGHTS:-}
MODEL=vgg19
if [ -z "$WEIGHTS" ]; then
  cache="${TORCH_HOME:-$HOME/.cache/torch}/hub/checkpoints/vgg19-dcbb9e9d.pth"
  if [ -f "$cache" ]; then WEIGHTS="$cache"; else
    MODEL=efficientnet_lite0
    echo "no VGG-19 weights at $cache: running EfficientNet-Lite0 with its real ImageNet weights instead"
  fi
fi
.venv/bin/interactive-export "$MODEL" ${WEIGHTS:+--weights "$WEIGHTS"} --out engines
mkdir -p demo-out/images
.venv/bin/python -c "import skimage.data, PIL.Image; PIL.Image.fromarray(skimage.data.chelsea()).save('demo-out/images/chelsea.jpg')"
labels=()
for candidate in ${LABELS:-} ../shared/data/imagenet_synset_words.txt; do
  if [ -f "$candidate" ]; then labels=(--labels "$candidate"); break; fi
done
if [ "$MODEL" = vgg19 ]; then layers=pool1,pool3,pool5,fc6,imagenet; else layers=block2,block4,block10,block15,imagenet; fi
.venv/bin/interactive-infer --engine "engines/${MODEL}_last_p2_both.onnx" demo-out/images \
  --out demo-out/results --heatmaps --heatmap-layers "$layers" "${labels[@]}"
echo "features and gamma maps: demo-out/results/*.npz; heat-maps: demo-out/results/*.png"
