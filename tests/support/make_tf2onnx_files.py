"""Writes tests/data/tf2onnx/: small Keras networks built with the layer calls of keras.applications, converted
by tf2onnx as its users convert them (`tf2onnx.convert.from_keras`, opset 13, a dynamic batch), so that the
import is tested on real tf2onnx output and not only on graphs written by hand after it. Seeded random
weights and BatchNorm statistics; a few kB each.

Not run by the tests (TensorFlow is not a dependency of the project). To write them again, in a virtual
environment of their own: `pip install tensorflow-cpu==2.15.1 tf2onnx==1.17.0 onnx==1.16.2`, then
`python tests/support/make_tf2onnx_files.py`. Written with those versions on 2026-12-06.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

layers = tf.keras.layers
OUT = Path(__file__).resolve().parents[1] / "data" / "tf2onnx"


def conv_bn(x, filters, kernel, strides=1, padding="same", activation="relu"):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization(epsilon=1.001e-5)(x)
    return layers.Activation(activation)(x) if activation else x


def hard_sigmoid(x):  # keras/applications/mobilenet_v3.py
    return layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)


def hard_swish(x):
    return layers.Multiply()([x, hard_sigmoid(x)])


def resnet_stem():
    """ResNet50's and DenseNet121's stem (ZeroPadding2D, a 7x7/2 conv, BN, ReLU, then ZeroPadding2D before a
    3x3/2 MaxPooling2D), a bottleneck block, the pooled classifier with its softmax."""
    image = layers.Input((64, 64, 3))
    x = layers.ZeroPadding2D(((3, 3), (3, 3)))(image)
    x = conv_bn(x, 8, 7, strides=2, padding="valid")
    x = layers.ZeroPadding2D(((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    shortcut = conv_bn(x, 16, 1, strides=2, activation=None)
    y = conv_bn(x, 4, 1, strides=2)
    y = conv_bn(y, 4, 3)
    y = conv_bn(y, 16, 1, activation=None)
    x = layers.Activation("relu")(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(image, layers.Dense(10, activation="softmax")(x), name="resnet_stem")


def efficientnet_se():
    """EfficientNet's in-graph normalisation and its MBConv block: swish, a depthwise conv, and the
    squeeze-and-excitation gate as keras.applications writes it (GlobalAveragePooling2D, Reshape to 1 x 1 x C,
    two 1x1 convs with swish and sigmoid, multiply)."""
    image = layers.Input((64, 64, 3))
    x = layers.Rescaling(1.0 / 255.0)(image)
    x = layers.Normalization(mean=[0.485, 0.456, 0.406], variance=[0.229 ** 2, 0.224 ** 2, 0.225 ** 2])(x)
    x = conv_bn(x, 8, 3, strides=2, activation="swish")
    for strides in (1, 2):
        inputs = x
        x = conv_bn(x, 16, 1, activation="swish")
        x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(x)
        x = layers.Activation("swish")(layers.BatchNormalization()(x))
        se = layers.GlobalAveragePooling2D()(x)
        se = layers.Reshape((1, 1, 16))(se)
        se = layers.Conv2D(4, 1, padding="same", activation="swish")(se)
        se = layers.Conv2D(16, 1, padding="same", activation="sigmoid")(se)
        x = layers.multiply([x, se])
        x = conv_bn(x, 8, 1, activation=None)
        if strides == 1:
            x = layers.add([x, inputs])
    x = conv_bn(x, 32, 1, strides=2, activation="swish")
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(image, layers.Dense(10, activation="softmax")(x), name="efficientnet_se")


def mobilenetv3_head():
    """MobileNetV3's Rescaling, hard-swish blocks with their squeeze-and-excitation (GlobalAveragePooling2D
    keeping dims, ReLU, hard sigmoid), and its head: 1x1 convs on the pooled 1 x 1 map with a hard swish
    between, Flatten, softmax."""
    image = layers.Input((64, 64, 3))
    x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(image)
    x = hard_swish(conv_bn(x, 8, 3, strides=2, activation=None))
    for strides in (2, 2, 2):
        x = hard_swish(conv_bn(x, 16, 1, activation=None))
        x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        se = layers.GlobalAveragePooling2D(keepdims=True)(x)
        se = layers.ReLU()(layers.Conv2D(8, 1, padding="same")(se))
        se = hard_sigmoid(layers.Conv2D(16, 1, padding="same")(se))
        x = layers.Multiply()([x, se])
        x = conv_bn(x, 8, 1, activation=None)
    x = hard_swish(conv_bn(x, 24, 1, activation=None))
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = hard_swish(layers.Conv2D(32, 1, padding="same")(x))
    x = layers.Dropout(0.2)(x)
    x = layers.Conv2D(10, 1, padding="same")(x)
    x = layers.Flatten()(x)
    return tf.keras.Model(image, layers.Activation("softmax")(x), name="mobilenetv3_head")


def inception_valid():
    """Inception v3's unpadded stem at a native size that is no multiple of the total stride (75 = 8 x 9 + 3;
    Inception v3 itself takes 299): valid 3x3 convs and max pools of stride 2, a mixed block with a 'same'
    average pool (TensorFlow's excludes the padding from its count) and 1x7 / 7x1 convs."""
    image = layers.Input((75, 75, 3))
    x = conv_bn(image, 8, 3, strides=2, padding="valid")
    x = conv_bn(x, 8, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    branches = [conv_bn(x, 8, 1),
                conv_bn(conv_bn(x, 4, (1, 7)), 8, (7, 1)),
                conv_bn(layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x), 8, 1)]
    x = layers.concatenate(branches, axis=3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv_bn(x, 16, 3)
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(image, layers.Dense(10, activation="softmax")(x), name="inception_valid")


def resnetv2_stem():
    """ResNet50V2's stem: its first conv's output, before any activation (pre-activation blocks), zero-padded
    and max-pooled; then a pre-activation block (BN, ReLU, convs, add) and the post-norm before the pool."""
    image = layers.Input((64, 64, 3))
    x = layers.ZeroPadding2D(((3, 3), (3, 3)))(image)
    x = layers.Conv2D(8, 7, strides=2)(x)
    x = layers.ZeroPadding2D(((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2)(x)
    preact = layers.Activation("relu")(layers.BatchNormalization(epsilon=1.001e-5)(x))
    shortcut = layers.Conv2D(16, 1)(preact)
    y = conv_bn(preact, 4, 1)
    y = conv_bn(y, 4, 3)
    x = layers.Add()([shortcut, layers.Conv2D(16, 1)(y)])
    x = layers.Activation("relu")(layers.BatchNormalization(epsilon=1.001e-5)(x))
    x = layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(image, layers.Dense(10, activation="softmax")(x), name="resnetv2_stem")


def grouped(conv):
    """Keras runs a Conv2D with groups > 1 as a jit-compiled function, which tf2onnx leaves as TensorFlow's
    PartitionedCall (tensorflow-onnx#2099); its plain convolution op converts (docs/onnx-import.md)."""
    conv._jit_compiled_convolution_op = conv.convolution_op
    return conv


class LayerScale(layers.Layer):
    """keras.applications.convnext's LayerScale, at trained-like values instead of its initial 1e-6."""

    def build(self, shape):
        self.gamma = self.add_weight(name="gamma", shape=(shape[-1],),
                                     initializer=tf.keras.initializers.RandomUniform(0.1, 0.5))

    def call(self, x):
        return x * self.gamma


def convnext_blocks():
    """ConvNeXt as keras.applications writes it: in-graph normalisation, a patchify stem, blocks of a 7x7
    Conv2D with groups = channels, LayerNormalization, Dense layers on the channels-last map with GELU,
    layer scale and residual; a LayerNormalization and 2x2/2 conv to downsample; the head's LayerNormalization
    after the pool. tf2onnx writes each LayerNorm out (moments, Rsqrt as Sqrt and Reciprocal) with a Reshape
    where a Transpose moves its mean's size-1 axis."""
    image = layers.Input((64, 64, 3))
    x = layers.Normalization(mean=[123.675, 116.28, 103.53], variance=[58.395 ** 2, 57.12 ** 2, 57.375 ** 2])(image)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.Conv2D(16, 4, strides=4)(x))
    for stage, dims in enumerate((16, 32)):
        if stage:
            x = layers.Conv2D(dims, 2, strides=2)(layers.LayerNormalization(epsilon=1e-6)(x))
        inputs = x
        x = grouped(layers.Conv2D(dims, 7, padding="same", groups=dims))(x)
        x = layers.LayerNormalization(epsilon=1e-6)(x)
        x = layers.Dense(4 * dims)(x)
        x = layers.Activation("gelu")(x)
        x = LayerScale()(layers.Dense(dims)(x))
        x = layers.add([inputs, x])
    x = layers.LayerNormalization(epsilon=1e-6)(layers.GlobalAveragePooling2D()(x))
    return tf.keras.Model(image, layers.Dense(10, activation="softmax")(x), name="convnext_blocks")


NETWORKS = {"resnet_stem": resnet_stem, "efficientnet_se": efficientnet_se, "mobilenetv3_head": mobilenetv3_head,
            "inception_valid": inception_valid, "resnetv2_stem": resnetv2_stem, "convnext_blocks": convnext_blocks}


def randomise(model, rng) -> None:
    """Weights as built (Glorot), BatchNorm statistics and the rest drawn, so that no BN is an identity."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 1.5, n)])
        elif isinstance(layer, (layers.Conv2D, layers.Dense)) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])


def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names or NETWORKS:
        index = list(NETWORKS).index(name)
        tf.keras.backend.clear_session()  # layer names start again: the same file whichever others are made
        tf.keras.utils.set_random_seed(index)
        model = NETWORKS[name]()
        randomise(model, np.random.default_rng(index))
        spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="input"),)
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=str(OUT / f"{name}.onnx"))
        print(name, (OUT / f"{name}.onnx").stat().st_size, "bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
