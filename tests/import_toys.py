"""Small PyTorch models for the importer's fast tests: each exercises one part of `archdsl import`
(blocks with flags and lifted parameters, repeats and stage tables, the op table, diagnostics) in
well under a second, without torchvision or timm.

`archdsl import tests/import_toys.py:toy_resnet` works too: every factory here takes no arguments.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Basic(nn.Module):
    """ResNet's basic block: two 3×3 convolutions, a projection shortcut when the shape changes."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ToyResNet(nn.Module):
    def __init__(self, layers: tuple[int, ...] = (2, 2, 2), classes: int = 10) -> None:
        super().__init__()
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._stage(16, layers[0], 1)
        self.layer2 = self._stage(32, layers[1], 2)
        self.layer3 = self._stage(64, layers[2], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        out = [Basic(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        out += [Basic(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = act_layer()
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(s))))


class Mixed(nn.Module):
    """One of each kind of op the importer maps: SE gate, concat branches, channel shuffle, chunk,
    upsample, pools, dropout, activations, a scalar scale, a padded max pool."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16, eps=1e-3), nn.Hardswish())
        self.se = SqueezeExcite(16, 4, nn.SiLU)
        self.branch_a = nn.Conv2d(16, 8, 1)
        self.branch_b = nn.Sequential(nn.Conv2d(16, 8, (1, 3), padding=(0, 1)), nn.ReLU6())
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16, dilation=1)
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se(self.stem(x))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], 1)
        x = F.channel_shuffle(x, 2)
        n, c, h, w = x.shape  # and ShuffleNet V2's own shuffle: view, transpose, view
        x = torch.transpose(x.view(n, 2, c // 2, h, w), 1, 2).contiguous().view(n, c, h, w)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([a, F.leaky_relu(b, 0.1)], 1) * 0.5
        x = self.up(self.pool(x)) + F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        x = F.gelu(self.dw(x))
        x = torch.cat([F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 1)], 1).flatten(1)
        return self.head(x)


class Cumulative(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(self.conv(x), dim=1)  # no archdsl op computes a running sum


class Unmappable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = Cumulative()
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).mean((2, 3)))


class ViewWrite(nn.Module):
    """Adds into half of its channels in place: the whole tensor changes, which no dataflow says."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.side = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y[:, :4] += self.side(x)
        return y


class ConvUnit(nn.Module):
    def __init__(self, inplanes: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inplanes, width, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class DashedStages(nn.Sequential):
    """torchvision's RegNet naming: each stage adds its blocks as `block{stage}-{i}` (add_module)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module("stem", nn.Conv2d(3, 8, 3, padding=1))
        inplanes = 8
        for stage, (width, depth) in enumerate(((8, 3), (16, 2)), start=1):
            blocks = nn.Sequential()
            for i in range(depth):
                blocks.add_module(f"block{stage}-{i}", ConvUnit(inplanes, width, 2 if i == 0 and stage > 1 else 1))
                inplanes = width
            self.add_module(f"block{stage}", blocks)


def toy_resnet() -> ToyResNet:
    return ToyResNet()


def mixed() -> Mixed:
    return Mixed()


def unmappable() -> Unmappable:
    return Unmappable()


def view_write() -> ViewWrite:
    return ViewWrite()


def dashed_stages() -> DashedStages:
    return DashedStages()
