"""A model `archdsl import` cannot describe: one of its blocks computes a running sum over the
channels, which no archdsl op does. The README shows the diagnostic: module, op and line of Python."""

import torch
from torch import nn


class RunningSum(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.cumsum(y, dim=1)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.mix = RunningSum(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mix(self.stem(x)).mean((2, 3)))
