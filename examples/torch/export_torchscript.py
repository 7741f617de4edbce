#!/usr/bin/env python3
"""Writes the transformer of patch_transformer.hpp as TorchScript.

The same network in Python (same tensor names and order, so weights move
between the two by position): a 4x4 grid of 7x7 patches of a 28x28 image,
Linear(49, 96) patch embedding plus a learned position embedding, 3 post-norm
encoder layers (4 heads, MLP width 192, no dropout), LayerNorm, mean pooling,
Linear(96, 5). Usage: export_torchscript.py OUT.pt [--seed S]
"""
import argparse

import torch
from torch import nn


class PatchTransformer(nn.Module):
    def __init__(self, d_model: int = 96, heads: int = 4, layers: int = 3, classes: int = 5):
        super().__init__()
        # Registration order = parameter order (position first, as in C++).
        self.position = nn.Parameter(0.02 * torch.randn(16, d_model))
        self.embed = nn.Linear(49, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.reshape(-1, 4, 7, 4, 7).permute(0, 1, 3, 2, 4).reshape(-1, 16, 49)
        x = self.embed(x) + self.position
        x = self.encoder(x.transpose(0, 1)).transpose(0, 1)
        return self.head(self.norm(x).mean(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    module = torch.jit.script(PatchTransformer())
    module.save(args.out)
    count = sum(p.numel() for p in module.parameters())
    print(f"wrote {args.out}: TorchScript PatchTransformer, {count} parameters")


if __name__ == "__main__":
    main()
