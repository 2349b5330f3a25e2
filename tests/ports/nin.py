"""Network in Network, the authors' Caffe model definitions (train_val.prototxt; read from the copies in
natanielruiz/net-archive @4015675, nin-cifar10/ and nin_imagenet/) written as PyTorch
modules layer by layer, with Caffe's layer names: CIFAR-10 (BVLC model zoo gist
mavenlin/e56253735ef32c3c296d, caffe commit c69b3b4) and ImageNet (gist mavenlin/d802a5849de39225bcc6).

Caffe semantics carried over: convolutions are unpadded unless the prototxt says `pad`; pooling
rounds the output size up (Caffe's default, PyTorch's ceil_mode=True); an AVE pool window that
hangs over the border divides by its clipped size, as PyTorch's does for ceil-mode windows when
there is no padding; the ReLUs are in place; dropout is the identity at test time.
"""

from __future__ import annotations

from collections import OrderedDict

import torch.nn as nn


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad)


def nin_cifar10() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv1", _conv(3, 192, 5, pad=2)), ("relu1", nn.ReLU(True)),
        ("cccp1", _conv(192, 160, 1)), ("relu_cccp1", nn.ReLU(True)),
        ("cccp2", _conv(160, 96, 1)), ("relu_cccp2", nn.ReLU(True)),
        ("pool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
        ("drop3", nn.Dropout(0.5)),
        ("conv2", _conv(96, 192, 5, pad=2)), ("relu2", nn.ReLU(True)),
        ("cccp3", _conv(192, 192, 1)), ("relu_cccp3", nn.ReLU(True)),
        ("cccp4", _conv(192, 192, 1)), ("relu_cccp4", nn.ReLU(True)),
        ("pool2", nn.AvgPool2d(3, stride=2, ceil_mode=True)),
        ("drop6", nn.Dropout(0.5)),
        ("conv3", _conv(192, 192, 3, pad=1)), ("relu3", nn.ReLU(True)),
        ("cccp5", _conv(192, 192, 1)), ("relu_cccp5", nn.ReLU(True)),
        ("cccp6", _conv(192, 10, 1)), ("relu_cccp6", nn.ReLU(True)),
        ("pool3", nn.AvgPool2d(8, stride=1)),
        ("flatten", nn.Flatten()),  # SOFTMAX_LOSS reads the 10×1×1 blob as 10 scores
    ]))


def nin_imagenet() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv1", _conv(3, 96, 11, stride=4)), ("relu0", nn.ReLU(True)),
        ("cccp1", _conv(96, 96, 1)), ("relu1", nn.ReLU(True)),
        ("cccp2", _conv(96, 96, 1)), ("relu2", nn.ReLU(True)),
        ("pool0", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
        ("conv2", _conv(96, 256, 5, pad=2)), ("relu3", nn.ReLU(True)),
        ("cccp3", _conv(256, 256, 1)), ("relu5", nn.ReLU(True)),
        ("cccp4", _conv(256, 256, 1)), ("relu6", nn.ReLU(True)),
        ("pool2", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
        ("conv3", _conv(256, 384, 3, pad=1)), ("relu7", nn.ReLU(True)),
        ("cccp5", _conv(384, 384, 1)), ("relu8", nn.ReLU(True)),
        ("cccp6", _conv(384, 384, 1)), ("relu9", nn.ReLU(True)),
        ("pool3", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
        ("drop", nn.Dropout(0.5)),
        ("conv4-1024", _conv(384, 1024, 3, pad=1)), ("relu10", nn.ReLU(True)),
        ("cccp7-1024", _conv(1024, 1024, 1)), ("relu11", nn.ReLU(True)),
        ("cccp8-1024", _conv(1024, 1000, 1)), ("relu12", nn.ReLU(True)),
        ("pool4", nn.AvgPool2d(6, stride=1)),
        ("flatten", nn.Flatten()),
    ]))


# The prototxt's fillers: every convolution's weight_filler is {type: "gaussian", std: …} (mean 0)
# and its bias_filler {type: "constant"} (value 0, given or Caffe's default).
CIFAR10_WEIGHT_STD = {name: 0.05 for name in ("conv1", "cccp1", "cccp2", "conv2", "cccp3", "cccp4", "conv3",
                                               "cccp5", "cccp6")}
IMAGENET_WEIGHT_STD = {"conv1": 0.01, "cccp1": 0.05, "cccp2": 0.05, "conv2": 0.05, "cccp3": 0.05, "cccp4": 0.05,
                       "conv3": 0.01, "cccp5": 0.05, "cccp6": 0.05, "conv4-1024": 0.05, "cccp7-1024": 0.05,
                       "cccp8-1024": 0.01}


def caffe_fillers(model: nn.Sequential, weight_std: dict[str, float]) -> nn.Sequential:
    """The model's convolutions filled as Caffe fills them from the prototxt."""
    for name, std in weight_std.items():
        conv = model.get_submodule(name)
        nn.init.normal_(conv.weight, 0.0, std)
        nn.init.constant_(conv.bias, 0.0)
    return model
