"""The PyTorch GPU peers of histoflow's CUDA kernels (issue 19): the same work
written as a user would write it in PyTorch, op by op (no fusion, no
torch.compile), on the same sizes as native/bench/cuda_bench.cc:

- optical density: -ln((I + 1) / 240), float32;
- colour deconvolution (scikit-image's rgb2hed: max(ln(max(I/255, 1e-6)) /
  ln(1e-6) @ hed_from_rgb, 0));
- stain transform with fixed stains (Ruifrok's H&E; their max_c, the 99th
  percentile of the concentrations, computed before the timing as histoflow's
  stain_transform takes fitted stains): 240·exp(−(C·max_c_ref/max_c) @ HE_ref),
  > 255 → 254, uint8;
- the augmentation pipeline of cuda_bench.cc, op by op: dihedral turn, /255,
  HED jitter (rgb2hed, s·alpha + beta, hed2rgb, clip), brightness, contrast
  (per-image grey mean), saturation, hue rotation (RGB→HSV→RGB), gaussian blur
  (σ = 1, separable depthwise conv2d, replicate edges), gaussian noise (σ =
  0.02), clip, normalize (ImageNet mean/std);
- Macenko fit + transform, batched (HEnorm_python's recipe on every image of
  the batch at once: masked covariance, batched eigh, angles, percentiles by
  sorting with the non-tissue pixels last, least squares by the
  pseudo-inverse, 99th percentile, transform).

Each is timed twice with CUDA events (torch.cuda.Event) after warm-up, median
of repeats: the input already on the device and the output left there
("device"), and from a host uint8 array to a host result ("with transfers").
With --device cpu the same code runs on the CPU, timed by the host clock: a
check of the script itself on a machine without a GPU.

Usage: gpu_torch.py [--device cuda|cpu] [--small] [--json FILE]
Prints one line per case and a JSON object (stdout, or FILE).
"""
import argparse
import json
import math
import platform
import statistics
import sys
import time

import torch

HE_REF = torch.tensor([[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]], dtype=torch.float64)  # rows H, E
MAX_C_REF = torch.tensor([1.9705, 1.0308], dtype=torch.float64)
RUIFROK = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]], dtype=torch.float64)
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64)
LOG_ADJUST = math.log(1e-6)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def synthetic_he(n, h, w, seed, device):
    """H&E-like random images (uint8, N×H×W×3) drawn on the device: two stains
    with random concentrations over a white background on a third of the pixels."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    he = RUIFROK / RUIFROK.norm(dim=1, keepdim=True)
    c = torch.rand(n, h, w, 2, generator=g) * torch.tensor([1.6, 0.9]) + 0.05
    od = c.double() @ he + 0.03 * (torch.rand(n, h, w, 3, generator=g).double() - 0.5)
    rgb = (240.0 * torch.exp(-od)).round() - 1
    background = torch.rand(n, h, w, 1, generator=g) < 0.3
    rgb = torch.where(background, 236 + 19 * torch.rand(n, h, w, 3, generator=g).double(), rgb)
    return rgb.clamp(0, 255).to(torch.uint8).to(device)


# ---- the ops, as a user would write them -------------------------------------------------


def optical_density(rgb):
    return -torch.log((rgb.float() + 1) / 240)


def deconvolve(rgb, hed_from_rgb):
    x = torch.clamp(rgb.float() / 255, min=1e-6)
    return torch.clamp(torch.log(x) / LOG_ADJUST @ hed_from_rgb, min=0)


def percentile(sorted_values, counts, q):
    """numpy.percentile (linear) per row of values sorted ascending with the
    `counts[i]` valid ones first."""
    pos = (counts.double() - 1).clamp(min=0) * (q / 100.0)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, (counts - 1).clamp(min=0))
    frac = (pos - lo.double()).to(sorted_values.dtype)
    a = sorted_values.gather(1, lo.unsqueeze(1)).squeeze(1)
    b = sorted_values.gather(1, hi.unsqueeze(1)).squeeze(1)
    return a + frac * (b - a)


def fixed_max_c(rgb, he):
    """The fixed-stain fit: max_c = 99th percentile of each stain's least-squares
    concentrations per image (he: N×2×3 stain rows, float32). Outside the timed
    transform, as histoflow's stain_transform takes its fits."""
    n = rgb.shape[0]
    od = optical_density(rgb).reshape(n, -1, 3)
    c = od @ torch.linalg.pinv(he.transpose(1, 2)).transpose(1, 2)  # N×P×2
    counts = torch.full((n,), c.shape[1], device=rgb.device)
    return torch.stack([percentile(c[..., k].sort(dim=1).values, counts, 99.0) for k in range(2)], dim=1)


def stain_transform(rgb, he, max_c):
    """240·exp(−(C·max_c_ref/max_c) @ HE_ref), > 255 → 254, uint8; C by the pseudo-inverse of he."""
    n = rgb.shape[0]
    od = optical_density(rgb).reshape(n, -1, 3)
    c = od @ torch.linalg.pinv(he.transpose(1, 2)).transpose(1, 2)  # N×P×2
    scale = (MAX_C_REF.to(rgb.device).float() / max_c).unsqueeze(1)
    out = 240 * torch.exp(-(c * scale) @ HE_REF.to(rgb.device).float())
    out = torch.where(out > 255, torch.full_like(out, 254), out)
    return out.to(torch.uint8).reshape(rgb.shape)


def macenko(rgb, io=240, alpha=1.0, beta=0.15):
    """HEnorm_python's normalizeStaining on every image of the batch at once."""
    n = rgb.shape[0]
    dev = rgb.device
    od = (-torch.log((rgb.double() + 1) / io)).reshape(n, -1, 3)
    mask = (od >= beta).all(dim=2)  # N×P
    count = mask.sum(dim=1)
    m = mask.unsqueeze(2).double()
    mean = (od * m).sum(dim=1) / count.clamp(min=1).unsqueeze(1)
    centred = (od - mean.unsqueeze(1)) * m
    cov = centred.transpose(1, 2) @ centred / (count - 1).clamp(min=1).view(n, 1, 1)
    _, vecs = torch.linalg.eigh(cov)  # ascending: the plane of columns 1 and 2
    plane = vecs[:, :, 1:3]
    t = od @ plane  # N×P×2
    phi = torch.atan2(t[..., 1], t[..., 0])
    phi = torch.where(mask, phi, torch.full_like(phi, float("inf")))  # non-tissue last
    phi_sorted = phi.sort(dim=1).values
    min_phi = percentile(phi_sorted, count, alpha)
    max_phi = percentile(phi_sorted, count, 100 - alpha)
    v_min = plane @ torch.stack([torch.cos(min_phi), torch.sin(min_phi)], dim=1).unsqueeze(2)
    v_max = plane @ torch.stack([torch.cos(max_phi), torch.sin(max_phi)], dim=1).unsqueeze(2)
    h_first = (v_min[:, 0, 0] > v_max[:, 0, 0]).view(n, 1, 1)
    he = torch.where(h_first, torch.cat([v_min, v_max], dim=2), torch.cat([v_max, v_min], dim=2))  # N×3×2
    c = od @ torch.linalg.pinv(he).transpose(1, 2)  # N×P×2
    full = torch.full((n,), c.shape[1], device=dev)
    max_c = torch.stack([percentile(c[..., k].sort(dim=1).values, full, 99.0) for k in range(2)], dim=1)
    c = c * (MAX_C_REF.to(dev) / max_c).unsqueeze(1)
    out = io * torch.exp(-c @ HE_REF.to(dev))
    out = torch.where(out > 255, torch.full_like(out, 254), out).to(torch.uint8).reshape(rgb.shape)
    fitted = (count >= 2).view(n, 1, 1, 1)
    return torch.where(fitted, out, rgb)


def augment_params(n, seed, device):
    g = torch.Generator(device="cpu").manual_seed(seed)
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    return {
        "d4": (u(n) * 8).long(),
        "alpha": 1 + 0.1 * (u(n, 3) - 0.5),
        "beta": 0.1 * (u(n, 3) - 0.5),
        "brightness": 0.8 + 0.4 * u(n),
        "contrast": 0.8 + 0.4 * u(n),
        "saturation": 0.8 + 0.4 * u(n),
        "hue": 0.1 * (u(n) - 0.5),
    }


def to_device(params, device):
    return {k: v.to(device) for k, v in params.items()}


def dihedral(x, d4):
    """x: N×3×H×W; d4 per image: d4 & 3 quarter turns, then a flip when d4 & 4.
    One indexed copy per distinct transform, as a user would batch it."""
    out = torch.empty_like(x)
    for k in range(8):
        idx = (d4 == k).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        y = torch.rot90(x.index_select(0, idx), k & 3, dims=(2, 3))
        if k & 4:
            y = torch.flip(y, dims=(3,))
        out.index_copy_(0, idx, y)
    return out


def rgb_to_hsv(x):
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp(min=1e-12), torch.zeros_like(maxc))
    d = delta.clamp(min=1e-12)
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return h, s, v


def hsv_to_rgb(h, s, v):
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    r = torch.stack([v, q, p, p, t, v], dim=1).gather(1, i.unsqueeze(1)).squeeze(1)
    g = torch.stack([t, v, v, q, p, p], dim=1).gather(1, i.unsqueeze(1)).squeeze(1)
    b = torch.stack([p, p, t, v, v, q], dim=1).gather(1, i.unsqueeze(1)).squeeze(1)
    return torch.stack([r, g, b], dim=1)


def augment(rgb, p, hed_from_rgb, rgb_from_hed):
    """uint8 N×H×W×3 → float32 N×3×H×W normalized, op by op."""
    n = rgb.shape[0]
    x = rgb.permute(0, 3, 1, 2).float() / 255  # N×3×H×W
    x = dihedral(x, p["d4"])
    # HED jitter (Tellez 2018) in scikit-image's convention.
    xc = x.permute(0, 2, 3, 1)
    s = torch.clamp(torch.log(torch.clamp(xc, min=1e-6)) / LOG_ADJUST @ hed_from_rgb, min=0)
    s = s * p["alpha"].view(n, 1, 1, 3) + p["beta"].view(n, 1, 1, 3)
    xc = torch.clamp(torch.exp((s * LOG_ADJUST) @ rgb_from_hed), 0, 1)
    x = xc.permute(0, 3, 1, 2)
    x = torch.clamp(x * p["brightness"].view(n, 1, 1, 1), 0, 1)
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    mean_gray = gray.mean(dim=(1, 2)).view(n, 1, 1, 1)
    x = torch.clamp((x - mean_gray) * p["contrast"].view(n, 1, 1, 1) + mean_gray, 0, 1)
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    x = torch.clamp(gray + (x - gray) * p["saturation"].view(n, 1, 1, 1), 0, 1)
    h, sat, v = rgb_to_hsv(x)
    h = (h + p["hue"].view(n, 1, 1)) % 1.0
    x = hsv_to_rgb(h, sat, v)
    # Gaussian blur, σ = 1, radius 3, separable, replicate edges.
    r = 3
    k = torch.exp(-torch.arange(-r, r + 1, device=x.device, dtype=torch.float32) ** 2 / 2)
    k = k / k.sum()
    x = torch.nn.functional.pad(x, (r, r, r, r), mode="replicate")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
    x = torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)
    x = torch.clamp(x + 0.02 * torch.randn_like(x), 0, 1)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


# ---- timing ------------------------------------------------------------------------------


def time_ms(fn, device, warmup, repeats, budget_s):
    """First call apart, `warmup` untimed calls, then up to `repeats` timed calls
    (at least 3, within budget_s): CUDA events on cuda, the host clock on cpu."""
    def once():
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            return a.elapsed_time(b)
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    first = once()
    for _ in range(warmup):
        once()
    samples, start = [], time.perf_counter()
    while len(samples) < repeats and (len(samples) < 3 or time.perf_counter() - start < budget_s):
        samples.append(once())
    return {"median_ms": statistics.median(samples), "min_ms": min(samples), "first_ms": first, "repeats": len(samples)}


def copy_bandwidth(device, nbytes, warmup, repeats):
    """Device-to-device copy of random bytes: GB/s counting bytes read + written."""
    src = torch.randint(0, 256, (nbytes,), dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    t = time_ms(lambda: dst.copy_(src), device, warmup, repeats, 1.0)
    return {"bytes": nbytes, "gbps": 2 * nbytes / (t["median_ms"] * 1e-3) / 1e9, **t}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--small", action="store_true", help="small sizes and few repeats (a check of the script)")
    ap.add_argument("--json", help="write the JSON here instead of stdout")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_torch.py: torch sees no CUDA device (torch %s); use --device cpu to check the script" % torch.__version__,
              file=sys.stderr)
        return 3
    device = torch.device(args.device)
    torch.manual_seed(0)
    sizes = [("8x96^2", 8, 96, 96), ("2x256^2", 2, 256, 256)] if args.small else \
        [("4096x96^2", 4096, 96, 96), ("16x2048^2", 16, 2048, 2048)]
    warmup, repeats, budget = (1, 3, 0.2) if args.small else (2, 20, 0.8)
    hed_from_rgb = torch.linalg.inv(RGB_FROM_HED).float().to(device)
    rgb_from_hed = RGB_FROM_HED.float().to(device)

    env = {"torch": torch.__version__, "python": platform.python_version(), "device": args.device,
           "threads": torch.get_num_threads(), "small": args.small}
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        env.update({"gpu": prop.name, "multiprocessors": prop.multi_processor_count,
                    "memory_bytes": prop.total_memory, "cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version()})
    copy = copy_bandwidth(device, (64 << 20) if args.small else (1 << 30), warmup, repeats)
    print("torch %s on %s: copy %.1f GB/s" % (torch.__version__, env.get("gpu", "cpu"), copy["gbps"]), flush=True)

    results = []

    def write(complete):
        """The report so far (rewritten after every case: a run cut short keeps what it measured)."""
        text = json.dumps({"suite": "gpu_torch", "complete": complete, "env": env, "copy": copy, "results": results},
                          indent=1)
        if args.json:
            with open(args.json, "w") as f:
                f.write(text + "\n")
        elif complete:
            print(text)

    for name, n, h, w in sizes:
        rgb = synthetic_he(n, h, w, 7, device)
        rgb_host = rgb.cpu()  # pageable, as the native bench's inputs
        he = RUIFROK.float().to(device).unsqueeze(0).expand(n, 2, 3).contiguous()
        max_c = fixed_max_c(rgb, he)
        params = augment_params(n, 11, "cpu")
        params_dev = to_device(params, device)
        cases = [
            ("optical_density", lambda x: optical_density(x), 3 + 12),
            ("deconvolve", lambda x: deconvolve(x, hed_from_rgb), 3 + 12),
            ("stain_transform", lambda x: stain_transform(x, he, max_c), 3 + 3),
            ("augment", lambda x: augment(x, params_dev, hed_from_rgb, rgb_from_hed), 3 + 12),
            ("macenko fit+transform", lambda x: macenko(x), 3 + 3),
        ]
        for op, fn, bytes_per_px in cases:
            device_t = time_ms(lambda: fn(rgb), device, warmup, repeats, budget)
            transfers_t = time_ms(lambda: fn(rgb_host.to(device)).cpu(), device, warmup, repeats, budget)
            px = n * h * w
            gbps = bytes_per_px * px / (device_t["median_ms"] * 1e-3) / 1e9
            results.append({"op": op, "input": name, "megapixels": px / 1e6, "min_bytes": bytes_per_px * px,
                            "device": device_t, "with_transfers": transfers_t, "gbps": gbps,
                            "fraction_of_copy": gbps / copy["gbps"]})
            print("  %-22s %-10s device %9.3f ms, with transfers %9.3f ms" %
                  (op, name, device_t["median_ms"], transfers_t["median_ms"]), flush=True)
            write(False)
        del rgb, rgb_host
        if device.type == "cuda":
            torch.cuda.empty_cache()

    write(True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
