"""PyTorch peer of histoflow's `train` benchmark: one zoo model (src/models/zoo.ts)
in one configuration a PyTorch user would reach for, trained (Adam 1e-3,
binary cross-entropy on a sigmoid output) and run for inference on a fixed
random batch. The suite runs every configuration, each in a process of its
own (so peak RSS is that configuration's), and takes the best as the peer.

  baseline  three blocks of two [conv 3x3 'same' (no bias) -> batch norm -> ReLU]
            with 32, 64, 128 filters, 2x2 max pooling after each block, global
            average pooling, dense 1 + sigmoid (src/models/baseline_cnn.ts)
  resnet    stem conv 3x3 16 (no bias) + BN + ReLU; 3 stages of 2 basic blocks
            with 16, 32, 64 filters, stages 2 and 3 opening with stride 2 and a
            1x1 stride-2 conv + BN shortcut; global average pool; dense 1 + sigmoid
            (zoo.ts `resnet`). TF's 'same' padding pads a stride-2 3x3 conv
            (0, 1); padding=1 here pads (1, 1): the same output shape and work.

Batch norm as the zoo builds it: epsilon 1e-3, moving-average momentum 0.9
(torch's momentum 0.1). The network's trainable parameters and forward FLOPs
(2·MACs of convs and dense layers, counted with forward hooks) are printed, so
the suite can assert that both sides built the same network, with one
signature per conv and dense layer (kernel/stride, channels, output size) to
compare layer by layer.

Configurations: --layout nchw | cl (torch.channels_last, model and input);
--jit 0 | 1: torch.jit.trace of the module (training mode) for the training
step, and for inference trace in eval mode + torch.jit.freeze (folds batch
norm into the convolutions). Threads: torch.set_num_threads(--threads) (the
suite also sets OMP_NUM_THREADS to the same).

Timing (timing.py): the first call alone, --warmup untimed calls, --repeats
timed calls, median; the same counts as histoflow's side. Prints one JSON
line; when torch.jit cannot trace this network, {"unsupported": reason}.

usage: train_torch.py --model baseline|resnet --batch B --size S --threads N
                      --layout nchw|cl --jit 0|1 --repeats R --warmup W
"""
import argparse
import json
import resource
import time
import warnings

import torch
from torch import nn

from timing import time_calls

BN_EPS = 1e-3
BN_MOMENTUM = 0.1  # Keras/TF.js momentum 0.9 (zoo.ts BN_MOMENTUM)


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


def baseline_cnn():
    layers = []
    cin = 3
    for f in (32, 64, 128):
        for _ in range(2):
            layers += [nn.Conv2d(cin, f, 3, padding=1, bias=False), bn(f), nn.ReLU(inplace=True)]
            cin = f
        layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """He et al. 2016: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = bn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = bn(cout)
        self.relu = nn.ReLU(inplace=True)
        if stride == 1 and cin == cout:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), bn(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + self.shortcut(x))


def resnet():
    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), bn(16), nn.ReLU(inplace=True)]
    cin = 16
    for stage, f in enumerate((16, 32, 64)):
        for block in range(2):
            layers.append(BasicBlock(cin, f, 2 if stage > 0 and block == 0 else 1))
            cin = f
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


MODELS = {"baseline": baseline_cnn, "resnet": resnet}


def network_cost(model, size):
    """(trainable parameters, forward FLOPs of one image = 2·MACs of convs and
    dense layers, one signature per layer in call order, as histoflow's
    src/bench/network_cost.ts writes them: 'conv 3x3/2 16→32 @48x48', 'dense 128→1')."""
    macs = [0]
    layers = []

    def conv_hook(m, _inp, out):
        macs[0] += out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        kh, kw = m.kernel_size
        layers.append(f"conv {kh}x{kw}/{m.stride[0]} {m.in_channels}→{m.out_channels} @{out.shape[2]}x{out.shape[3]}")

    def linear_hook(m, _inp, out):
        macs[0] += m.in_features * m.out_features * (out.numel() // out.shape[0] // m.out_features)
        layers.append(f"dense {m.in_features}→{m.out_features}")

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for h in hooks:
        h.remove()
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return params, 2 * macs[0], layers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS), required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--layout", choices=("nchw", "cl"), required=True)
    ap.add_argument("--jit", type=int, choices=(0, 1), required=True)
    ap.add_argument("--repeats", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    a = ap.parse_args()
    for name in ("batch", "size", "threads", "repeats"):
        if getattr(a, name) < 1:
            ap.error(f"Expected an integer >= 1 for --{name} but received {getattr(a, name)}")

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if a.layout == "cl" else torch.contiguous_format
    model = MODELS[a.model]()
    params, flops, layers = network_cost(model, a.size)
    model = model.to(memory_format=fmt)
    x = torch.rand(a.batch, 3, a.size, a.size).to(memory_format=fmt)
    y = (torch.rand(a.batch, 1) > 0.5).float()
    loss_fn = nn.BCELoss()

    model.train()
    train_fn = model
    if a.jit:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                train_fn = torch.jit.trace(model, x, check_trace=False)
        except Exception as e:  # a configuration that does not run here is reported, not timed
            print(json.dumps({"unsupported": f"torch.jit.trace (training): {type(e).__name__}: {e}"}))
            return
    opt = torch.optim.Adam(train_fn.parameters(), lr=1e-3)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(train_fn(x), y)
        loss.backward()
        opt.step()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    _, train = time_calls(train_step, a.repeats, a.warmup)
    cores_busy = (time.process_time() - cpu0) / (time.perf_counter() - wall0)

    model.eval()
    infer_fn = model
    if a.jit:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                infer_fn = torch.jit.freeze(torch.jit.trace(model, x, check_trace=False).eval())
        except Exception as e:
            print(json.dumps({"unsupported": f"torch.jit.trace + freeze (inference): {type(e).__name__}: {e}"}))
            return

    def infer():
        with torch.no_grad():
            infer_fn(x)

    _, infer_timing = time_calls(infer, a.repeats, a.warmup)
    print(json.dumps({
        "model": a.model,
        "layout": a.layout,
        "jit": bool(a.jit),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "trainable_params": params,
        "forward_flops_per_image": flops,
        "layers": layers,
        "train": train,
        "infer": infer_timing,
        "train_cores_busy": cores_busy,
        # Linux: kilobytes
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "steps": {"train": 1 + a.warmup + max(1, a.repeats), "infer": 1 + a.warmup + max(1, a.repeats)},
    }))


if __name__ == "__main__":
    main()
