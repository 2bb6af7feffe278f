#!/usr/bin/env python3
"""PyTorch CPU peer of atflow's engine benchmark (bench/engine.ts): the same architectures, batch and
measures, written as the authors' code does them (docs/algorithms.md §4.1 PGD, §5.1 PGD-AT, §6 SGD).

Prints one JSON object per line: {"model", "measure", "onednn", "ms", "threads", "torch"} with the
median over --reps timed repetitions after --warmup ones, for oneDNN on (PyTorch's default) and off
(torch.backends.mkldnn.enabled = False), whichever --onednn asks for. Exits 3 with
{"error": ...} on stdout when PyTorch is not installed.
"""
import argparse
import json
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # the benchmark reports atflow's figures alone
    print(json.dumps({"error": "PyTorch is not installed (pip install torch)"}), flush=True)
    sys.exit(3)

EPS, ALPHA, PGD_STEPS = 8 / 255, 2 / 255, 10


class CnnSmall(nn.Module):
    """atflow's cnn-small: conv3x3x32-relu-maxpool, conv3x3x64-relu-maxpool, fc 128, fc K (no padding)."""

    def __init__(self, in_channels=1, num_classes=10, side=28):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        s = ((side - 2) // 2 - 2) // 2
        self.fc1 = nn.Linear(64 * s * s, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class PreActBlock(nn.Module):
    """Rice et al.'s PreActBlock (locuslab/robust_overfitting preactresnet.py)."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        layers, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks = []
            for s in (stride, 1):
                blocks.append(PreActBlock(in_planes, planes, s))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(F.relu(self.bn(out)), 4)
        return self.linear(out.flatten(1))


MODELS = {"mnist": (CnnSmall, (1, 28, 28)), "resnet": (PreActResNet18, (3, 32, 32))}


def pgd_linf(model, x, y, eps=EPS, alpha=ALPHA, steps=PGD_STEPS):
    """docs/algorithms.md §4.1 (train.py pgd_loss): clamped uniform start, 10 sign steps, projection, [0,1] clamp."""
    model.eval()
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, [x_adv])
        x_adv = x_adv.detach() + alpha * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


def train_step(model, opt, x, y):
    """docs/algorithms.md §5.1 steps 2-4: one train-mode forward on the batch, backward, SGD step."""
    model.train()
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def measures(model, opt, x, y):
    def forward():
        model.eval()
        with torch.no_grad():
            model(x)

    def grad_x():
        model.eval()
        xx = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xx), y), [xx])
        return g

    return {
        "forward": forward,
        "grad_x": grad_x,
        "train_step": lambda: train_step(model, opt, x, y),
        "pgd10_at_step": lambda: train_step(model, opt, pgd_linf(model, x, y), y),
    }


def load_safetensors(path):
    """The tensors of a safetensors file (what atflow's bench writes: F32 / I32 / I64)."""
    import struct
    dtypes = {"F32": torch.float32, "I32": torch.int32, "I64": torch.int64}
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a : 8 + n + b]), dtype=dtypes[h["dtype"]]).view(h["shape"]).clone()
    return out


def epoch_bench(args):
    """`atflow bench --suite eval`'s epoch part: the per-epoch evaluation as the authors' code does it (eval mode,
    per batch a clean forward, PGD, a forward at the adversarial point; on the test set and a training subset),
    then one PGD-AT epoch (PGD + train step per batch), on atflow's weights and data. One JSON line."""
    data = load_safetensors(args.epoch)
    nchw = lambda t: t.permute(0, 3, 1, 2).contiguous()
    x_train, y_train = nchw(data["x_train"]), data["y_train"].long()
    x_test, y_test = nchw(data["x_test"]), data["y_test"].long()
    model = CnnSmall()
    model.load_state_dict(load_safetensors(args.weights))
    torch.manual_seed(args.seed)

    def evaluate(x, y):
        model.eval()
        for i in range(0, x.shape[0], args.eval_batch):
            xb, yb = x[i : i + args.eval_batch], y[i : i + args.eval_batch]
            with torch.no_grad():
                clean = model(xb)
                F.cross_entropy(clean, yb, reduction="none").tolist()
            x_adv = pgd_linf(model, xb, yb, args.eps, args.eval_alpha, args.steps)
            with torch.no_grad():
                adv = model(x_adv)
                F.cross_entropy(adv, yb, reduction="none").tolist()

    def eval_once():
        t = time.perf_counter()
        evaluate(x_test, y_test)
        evaluate(x_train[: args.subset], y_train[: args.subset])
        return (time.perf_counter() - t) * 1000

    eval_once()  # warm-up
    eval_ms = statistics.median([eval_once() for _ in range(args.reps)])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    t = time.perf_counter()
    perm = torch.randperm(x_train.shape[0])
    for i in range(0, x_train.shape[0], args.batch):
        idx = perm[i : i + args.batch]
        xb, yb = x_train[idx], y_train[idx]
        train_step(model, opt, pgd_linf(model, xb, yb, args.eps, args.alpha, args.steps), yb)
    train_ms = (time.perf_counter() - t) * 1000
    print(json.dumps({"eval_ms": eval_ms, "train_ms": train_ms, "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)


def peak_matmul(n, reps):
    """Median GFLOP/s (2 n^3 flops) of an n x n by n x n float32 matmul: the peak probe."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g) * 2 - 1
    b = torch.rand(n, n, generator=g) * 2 - 1
    torch.mm(a, b)
    times = []
    for _ in range(max(3, reps)):
        t = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t)
    gflops = 2 * n**3 / statistics.median(times) / 1e9
    print(json.dumps({"measure": "peak_matmul", "n": n, "gflops": gflops, "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=sorted(MODELS))
    ap.add_argument("--batch", type=int)
    ap.add_argument("--peak", type=int, help="instead of a model: GFLOP/s of an N x N float32 matmul (atflow bench's peak probe)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--measures", default="forward,grad_x,train_step,pgd10_at_step")
    ap.add_argument("--onednn", choices=["both", "on", "off"], default="both")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epoch", help="instead of a model: the per-epoch evaluation and a PGD-AT epoch on this safetensors data file (atflow bench --suite eval)")
    ap.add_argument("--weights", help="--epoch: atflow's cnn-small weights")
    ap.add_argument("--subset", type=int, default=500, help="--epoch: training digits evaluated")
    ap.add_argument("--eval-batch", type=int, default=200)
    ap.add_argument("--eps", type=float, default=EPS)
    ap.add_argument("--alpha", type=float, default=ALPHA)
    ap.add_argument("--eval-alpha", type=float, default=ALPHA)
    ap.add_argument("--steps", type=int, default=PGD_STEPS)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.epoch:
        if args.batch is None:
            args.batch = 128
        epoch_bench(args)
        return
    if args.peak:
        peak_matmul(args.peak, args.reps)
        return
    if args.model is None or args.batch is None:
        ap.error("--model and --batch are required (or --peak N)")
    cls, shape = MODELS[args.model]
    wanted = args.measures.split(",")
    configs = {"both": (True, False), "on": (True,), "off": (False,)}[args.onednn]
    for onednn in configs:
        torch.backends.mkldnn.enabled = onednn
        torch.manual_seed(args.seed)
        model = cls()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        x = torch.rand(args.batch, *shape)
        y = torch.randint(0, 10, (args.batch,))
        fns = measures(model, opt, x, y)
        for name in wanted:
            fn = fns[name]
            for _ in range(args.warmup):
                fn()
            times = []
            for _ in range(args.reps):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1000)
            print(
                json.dumps(
                    {
                        "model": args.model,
                        "measure": name,
                        "onednn": onednn,
                        "ms": statistics.median(times),
                        "threads": torch.get_num_threads(),
                        "torch": torch.__version__,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
