"""PyTorch peer of histoflow's `train` benchmark: the baseline CNN (three
blocks of two [conv 3x3 'same' (no bias) -> batch norm -> ReLU] with 32, 64,
128 filters, 2x2 max pooling after each block, global average pooling, dense 1
+ sigmoid), Adam 1e-3, binary cross-entropy, channels-last, on a fixed random
batch. Prints one JSON line: images/s of a training step and of inference.

usage: train_torch.py BATCH SIZE THREADS TRAIN_REPEATS INFER_REPEATS WARMUP
"""
import json
import sys

import torch
from torch import nn

from timing import time_calls


def block(cin, cout):
    # Keras defaults: epsilon 1e-3, momentum 0.99 (torch's 0.01)
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU(inplace=True)]


def baseline_cnn():
    layers = []
    cin = 3
    for f in (32, 64, 128):
        layers += block(cin, f) + block(f, f) + [nn.MaxPool2d(2)]
        cin = f
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


def main():
    batch, size, threads, train_repeats, infer_repeats, warmup = (int(a) for a in sys.argv[1:7])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = baseline_cnn().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCELoss()
    x = torch.rand(batch, 3, size, size).to(memory_format=torch.channels_last)
    y = (torch.rand(batch, 1) > 0.5).float()

    def train_step():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(x)

    _, train = time_calls(train_step, train_repeats, warmup)
    _, infer_timing = time_calls(infer, infer_repeats, warmup)
    print(json.dumps({
        "train": train,
        "infer": infer_timing,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
    }))


if __name__ == "__main__":
    main()
