"""The independent producer of test/models/onnx.test.ts: PyTorch builds the
baseline CNN (benchmarks/peers/train_torch.py's architecture, seeded weights),
exports it to ONNX, and scores the test's patches itself, so histoflow's ONNX
predictor is checked against PyTorch's own probabilities.

usage: export_onnx.py PATCHES.u8 N OUT_DIR

PATCHES.u8 holds N x 96 x 96 x 3 uint8 (RGB, NHWC), as histoflow decoded them.
OUT_DIR gets:
  nchw/model.onnx, nchw/model.card.json   input [batch, 3, 96, 96], output: sigmoid probability [batch, 1]
  nhwc.onnx, nhwc.card.json               input [batch, 96, 96, 3], output: 2-class logits [batch, 2]
  torch_nchw.f32, torch_nhwc.f32          PyTorch's P(tumour) per patch, float32 little-endian
and prints one JSON line (versions, probability range).

Batch norm's running statistics are set from the patches themselves (one
pass in training mode with a cumulative average) and the dense layer is
rescaled, so the probabilities spread over (0, 1) instead of all sitting
at 0.5, and a wrong channel order or normalization shows.
"""
import json
import os
import sys

import numpy as np
import torch
from torch import nn

SIZE = 96
MEAN = (0.485, 0.456, 0.406)  # 'imagenet' in src/augment/pipeline.ts
STD = (0.229, 0.224, 0.225)


def block(cin, cout):
    # Keras defaults, as in benchmarks/peers/train_torch.py: epsilon 1e-3
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU()]


def baseline_features():
    layers = []
    cin = 3
    for f in (32, 64, 128):
        layers += block(cin, f) + block(f, f) + [nn.MaxPool2d(2)]
        cin = f
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class Baseline(nn.Module):
    """The baseline CNN: features -> dense 1 -> sigmoid (NCHW input)."""

    def __init__(self):
        super().__init__()
        self.features = baseline_features()
        self.dense = nn.Linear(128, 1)

    def logit(self, x):
        return self.dense(self.features(x))

    def forward(self, x):
        return torch.sigmoid(self.logit(x))


class NhwcTwoClass(nn.Module):
    """The same weights taking NHWC input and giving 2-class logits [-z/2, z/2] (softmax[1] = sigmoid(z))."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        z = self.base.logit(x.permute(0, 3, 1, 2))
        return torch.cat([-z / 2, z / 2], dim=1)


def export(model, example, path, input_name, output_name):
    torch.onnx.export(
        model, example, path, input_names=[input_name], output_names=[output_name],
        dynamic_axes={input_name: {0: 'batch'}, output_name: {0: 'batch'}}, opset_version=13, do_constant_folding=True,
    )


def main():
    patches_path, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.manual_seed(0)
    torch.set_num_threads(1)
    u8 = np.fromfile(patches_path, dtype=np.uint8)
    if u8.size != n * SIZE * SIZE * 3:
        raise SystemExit(f'{patches_path}: {u8.size} bytes, expected {n} x {SIZE} x {SIZE} x 3')
    x = u8.reshape(n, SIZE, SIZE, 3).astype(np.float32) / np.float32(255)
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    nhwc = torch.from_numpy(np.ascontiguousarray(x))
    nchw = nhwc.permute(0, 3, 1, 2).contiguous()

    model = Baseline()
    with torch.no_grad():
        # Batch norm statistics of these patches (cumulative average over one pass).
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        model.train()
        model(nchw)
        model.eval()
        # A dense layer whose logits spread over a few units, centred on the patches.
        model.dense.weight.normal_(0, 1)
        model.dense.bias.zero_()
        z = model.logit(nchw)[:, 0]
        model.dense.weight.mul_(3 / float(z.std()))
        model.dense.bias.fill_(-float(z.median()) * 3 / float(z.std()))

        os.makedirs(os.path.join(out, 'nchw'), exist_ok=True)
        export(model, nchw[:2], os.path.join(out, 'nchw', 'model.onnx'), 'image', 'probability')
        two = NhwcTwoClass(model).eval()
        export(two, nhwc[:2], os.path.join(out, 'nhwc.onnx'), 'pixels', 'logits')

        p_nchw = model(nchw)[:, 0].numpy().astype('<f4')
        p_nhwc = torch.softmax(two(nhwc), dim=1)[:, 1].numpy().astype('<f4')
    p_nchw.tofile(os.path.join(out, 'torch_nchw.f32'))
    p_nhwc.tofile(os.path.join(out, 'torch_nhwc.f32'))

    card = {'inputSize': SIZE, 'architecture': 'baseline', 'preprocess': {'normalize': 'imagenet'}, 'producer': f'torch {torch.__version__}'}
    with open(os.path.join(out, 'nchw', 'model.card.json'), 'w') as f:
        json.dump({**card, 'channelOrder': 'NCHW', 'output': 'sigmoid'}, f, indent=2)
    with open(os.path.join(out, 'nhwc.card.json'), 'w') as f:
        json.dump({**card, 'channelOrder': 'NHWC', 'output': 'logits'}, f, indent=2)
    print(json.dumps({
        'torch': torch.__version__, 'n': n,
        'p_min': float(p_nchw.min()), 'p_max': float(p_nchw.max()),
        'nhwc_vs_nchw': float(np.abs(p_nchw - p_nhwc).max()),
    }))


if __name__ == '__main__':
    main()
