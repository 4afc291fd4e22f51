"""Stable output names and shapes of the exported graph: the contract the runtime reads.

Per feature layer t (paper Table 1 rows), five outputs:
  `<t>.gamma`            (N, 1, H_t, W_t)  the weight map gamma^(t) (equations 8-9): one map per layer,
                         or (N, C_t, H_t, W_t) when a successor of t is grouped or depthwise
  `<t>.interactive_avg`  (N, D_t)          X~^(t) = X^(t) * gamma^(t), averaged over space
  `<t>.interactive_max`  (N, D_t)          X~^(t), max over space
  `<t>.orig_avg`         (N, D_t)          X^(t), averaged over space (Table 1 'Orig. AVG')
  `<t>.orig_max`         (N, D_t)          X^(t), max over space ('Orig. MAX')
ImageNet head (section 4.4):
  `imagenet.scores_orig`         (N, classes)  spatial mean of fc8 (dense evaluation)
  `imagenet.scores_interactive`  (N, classes)  the same after fc7 re-weighting by gamma^(fc7)
  `imagenet.gamma`               (N, 1, H, W)  gamma^(fc7), divided by its spatial mean
"""

from __future__ import annotations

from interactive_trt.contracts.spec import ModelSpec

FEATURE_KINDS = ("interactive_avg", "interactive_max", "orig_avg", "orig_max")
HEADS = ("features", "imagenet", "both")
CONFIGS = ("last", "next")
# the compute dtypes of a graph (fp16-backward: a float32 forward pass, a float16 backward pass); inputs and
# outputs are float32 in every one
PRECISIONS = ("fp32", "fp16", "fp16-backward")


def feature_output_names(spec: ModelSpec, interactive: bool = True) -> list[str]:
    names = []
    for layer in spec.feature_layers:
        if interactive:
            names += [f"{layer}.gamma", f"{layer}.interactive_avg", f"{layer}.interactive_max"]
        names += [f"{layer}.orig_avg", f"{layer}.orig_max"]
    return names


def head_output_names(interactive: bool = True) -> list[str]:
    if not interactive:
        return ["imagenet.scores_orig"]
    return ["imagenet.scores_orig", "imagenet.scores_interactive", "imagenet.gamma"]


def output_names(spec: ModelSpec, head: str, interactive: bool = True) -> list[str]:
    names = []
    if head in ("features", "both"):
        names += feature_output_names(spec, interactive)
    if head in ("imagenet", "both"):
        names += head_output_names(interactive)
    return names


def output_layer(spec: ModelSpec, name: str) -> str:
    """The layer whose spatial grid an output lives on (for maps) or whose channels it has."""
    prefix = name.split(".", 1)[0]
    if prefix == "imagenet":
        return spec.head_logits if "scores" in name else spec.head_input
    return prefix


def output_shape(spec: ModelSpec, name: str, batch, height: int | None = None, width: int | None = None):
    """Shape of an output; symbolic ("H/2") when no input size is given, else concrete."""
    layer, prefix = output_layer(spec, name), name.split(".", 1)[0]
    if name.endswith("gamma"):
        channels = 1 if prefix == "imagenet" else spec.gamma_channels(layer)
        if height is None:
            return [batch, channels, f"{layer}.H", f"{layer}.W"]
        h, w = spec.spatial_sizes(height, width)[layer]
        return [batch, channels, h, w]
    return [batch, spec.channels_of(layer)]
