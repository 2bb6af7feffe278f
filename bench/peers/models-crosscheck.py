"""
atflow's models against PyTorch definitions of the same architectures.

Dev check (not CI):
  python3 bench/peers/models-crosscheck.py make  DIR   # PyTorch weights + inputs + reference outputs
  npx tsx bench/peers/models-crosscheck.ts        DIR   # atflow loads them, compares, writes its own checkpoints
  python3 bench/peers/models-crosscheck.py check DIR   # PyTorch loads atflow's checkpoints (strict) and compares

Run by test/models/pytorch-checkpoints.test.ts (CI, in a venv from the machine's package index):
  python3 bench/peers/models-crosscheck.py wrapped DIR N   # checkpoints as PyTorch users save them, see wrapped()

The PyTorch classes below are written from docs/algorithms.md §3 (the authors' resnet/wideresnet/vgg, Rice et al.'s
PreActResNet18) and docs/models.md (mlp, cnn-small); their state_dict names are what atflow must match.
Needs: pip install torch safetensors.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


class MLP(nn.Module):
    def __init__(self, in_features, k):
        super().__init__()
        self.fc1 = nn.Linear(in_features, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, k)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CnnSmall(nn.Module):
    def __init__(self, c, k, side):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        s = ((side - 2) // 2 - 2) // 2
        self.fc1 = nn.Linear(64 * s * s, 128)
        self.fc2 = nn.Linear(128, k)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        o = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(o)) + self.shortcut(x))


class PreAct(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.has_shortcut = stride != 1 or cin != cout
        if self.has_shortcut:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))

    def forward(self, x):
        o = F.relu(self.bn1(x))
        s = self.shortcut(o) if self.has_shortcut else x
        return self.conv2(F.relu(self.bn2(self.conv1(o)))) + s


class ResNetFamily(nn.Module):
    def __init__(self, block, k, c=3, preact=False):
        super().__init__()
        self.preact = preact
        self.conv1 = nn.Conv2d(c, 64, 3, 1, 1, bias=False)
        if not preact:
            self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, (planes, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
            blocks = []
            for j in range(2):
                blocks.append(block(cin, planes, stride if j == 0 else 1))
                cin = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        if preact:
            self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, k)

    def forward(self, x):
        o = self.conv1(x) if self.preact else F.relu(self.bn1(self.conv1(x)))
        o = self.layer4(self.layer3(self.layer2(self.layer1(o))))
        if self.preact:
            o = F.relu(self.bn(o))
        return self.linear(F.avg_pool2d(o, 4).flatten(1))


class WideBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        if not self.equal:
            self.convShortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        o = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return (x if self.equal else self.convShortcut(a)) + o


class Group(nn.Module):
    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WideBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WRN(nn.Module):
    def __init__(self, depth, widen, k):
        super().__init__()
        n = (depth - 4) // 6
        ch = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.block1 = Group(n, ch[0], ch[1], 1)
        self.block2 = Group(n, ch[1], ch[2], 2)
        self.block3 = Group(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.fc = nn.Linear(ch[3], k)

    def forward(self, x):
        o = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(F.avg_pool2d(F.relu(self.bn1(o)), 8).flatten(1))


class VGG16(nn.Module):
    def __init__(self, k):
        super().__init__()
        layers, cin = [], 3
        for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                cin = v
        layers.append(nn.AvgPool2d(1, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, k)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


# (atflow name, classes, input [H, W, C], constructor)
CASES = [
    ("mlp", 10, [28, 28, 1], lambda: MLP(28 * 28, 10)),
    ("mlp", 10, [32, 32, 3], lambda: MLP(32 * 32 * 3, 10)),
    ("cnn-small", 10, [28, 28, 1], lambda: CnnSmall(1, 10, 28)),
    ("cnn-small", 10, [32, 32, 3], lambda: CnnSmall(3, 10, 32)),
    ("resnet18", 10, [32, 32, 3], lambda: ResNetFamily(Basic, 10)),
    ("preact-resnet18", 10, [32, 32, 3], lambda: ResNetFamily(PreAct, 10, preact=True)),
    # odd sizes: PyTorch pads stride-2 convs symmetrically (TensorFlow's 'same' would not)
    ("resnet18", 100, [25, 25, 3], lambda: ResNetFamily(Basic, 100)),
    ("preact-resnet18", 10, [27, 27, 3], lambda: ResNetFamily(PreAct, 10, preact=True)),
    ("wrn-16-2", 10, [32, 32, 3], lambda: WRN(16, 2, 10)),
    ("wrn-28-10", 10, [32, 32, 3], lambda: WRN(28, 10, 10)),
    ("vgg16", 100, [32, 32, 3], lambda: VGG16(100)),
]


def case_id(name, k, shape):
    return f"{name}_k{k}_{'x'.join(map(str, shape))}"


def perturb_bn(model, g):
    # Non-default BN state, so eval mode really uses running statistics and γ/β.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(7)


def make(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    manifest = []
    for name, k, shape, ctor in CASES:
        cid = case_id(name, k, shape)
        model = ctor()
        perturb_bn(model, g)
        save_file({n: t.contiguous() for n, t in model.state_dict().items()}, f"{out}/{cid}.weights.safetensors")
        h, w, c = shape
        x = torch.rand((4, c, h, w), generator=g)
        model.eval()
        with torch.no_grad():
            logits_eval = model(x)
            model.train()
            logits_train = model(x)
        io = {"x_nhwc": x.permute(0, 2, 3, 1).contiguous(), "logits_eval": logits_eval, "logits_train": logits_train}
        for n, t in model.state_dict().items():
            io[f"after.{n}"] = t.contiguous()
        save_file(io, f"{out}/{cid}.io.safetensors")
        manifest.append({"id": cid, "name": name, "classes": k, "inputShape": shape,
                         "parameters": sum(p.numel() for p in model.parameters())})
        print(f"{cid}: {manifest[-1]['parameters']:,} parameters")
    with open(f"{out}/manifest.json", "w") as f:
        json.dump(manifest, f)


def check(out):
    with open(f"{out}/manifest.json") as f:
        manifest = json.load(f)
    ok = True
    for m in manifest:
        ctor = next(c for (n, k, s, c) in CASES if case_id(n, k, s) == m["id"])
        model = ctor()
        ours = load_file(f"{out}/{m['id']}.atflow.safetensors")
        model.load_state_dict(ours, strict=True)  # raises on any missing / unexpected / mis-shaped tensor
        ref = load_file(f"{out}/{m['id']}.io.safetensors")
        worst = 0.0
        for n, t in model.state_dict().items():
            r = ref[f"after.{n}"]
            if t.dtype != r.dtype:
                print(f"  {n}: dtype {t.dtype} vs {r.dtype}")
                ok = False
            worst = max(worst, (t.double() - r.double()).abs().max().item() if t.numel() else 0.0)
        print(f"{m['id']}: atflow checkpoint loads strictly into PyTorch; max |state − PyTorch state after a train step| = {worst:.3g}")
        ok = ok and worst < 1e-4
    sys.exit(0 if ok else 1)


def cifar10_files(out, x_u8, labels):
    """The CIFAR-10 binary layout: per record a label byte, then the R, G, B planes (32×32 each, row-major)."""
    folder = os.path.join(out, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    records = b"".join(bytes([int(y)]) + img.tobytes() for img, y in zip(x_u8.numpy(), labels.tolist()))
    with open(os.path.join(folder, "test_batch.bin"), "wb") as f:
        f.write(records)
    for i in range(1, 6):  # the loader wants all six files; the training batches are not used here
        with open(os.path.join(folder, f"data_batch_{i}.bin"), "wb") as f:
            f.write(records[: 3073])


def center_head(model, head, x):
    """
    A network with random weights gives every input nearly the same features, so its classifier's bias
    picks one class for all of them (equal accuracies would then prove little). Scaling the head and
    setting its bias to cancel the mean logit over these inputs spreads the predictions over the classes.
    """
    features = []
    hook = getattr(model, head).register_forward_hook(lambda m, i, o: features.append(i[0]))
    with torch.no_grad():
        model(x)
    hook.remove()
    f = features[0]
    linear = getattr(model, head)
    with torch.no_grad():
        linear.weight.mul_(1.0 / (f - f.mean(0)).matmul(linear.weight.T).std().item())
        linear.bias.copy_(-f.mean(0).matmul(linear.weight.T))


def predictions(model, x, y):
    with torch.no_grad():
        z = model(x)
    top2 = z.topk(2, dim=1).values
    zy = z.gather(1, y[:, None])[:, 0]
    others = z.clone()
    others[torch.arange(len(y)), y] = -float("inf")
    return {
        "pred": z.argmax(1).tolist(),
        "clean_acc": (z.argmax(1) == y).float().mean().item(),
        "margin": (zy - others.max(1).values).tolist(),  # z_y − max_{j≠y} z_j, as atflow's clean_margin
        "top2_gap": (top2[:, 0] - top2[:, 1]).tolist(),
        "logits": z.flatten().tolist(),
    }


def wrapped(out, n):
    """
    Checkpoints as PyTorch users save them: PreAct-ResNet-18 and WRN-28-10 (seeded, BN state perturbed),
    wrapped in nn.DataParallel so every state_dict name starts with 'module.', written with
    safetensors.torch.save_file; for PreAct-ResNet-18 also in F16, BF16 and F64 and as a torch.save .pt.
    The inputs are N seeded uint8 images with seeded labels, written as CIFAR-10 test_batch.bin so that
    `atflow eval --dataset cifar10` reads the same pixels; PyTorch's predictions on them (x = uint8 / 255,
    as ToTensor) go to reference.json. Random weights (the head centred, see center_head) and random
    labels: the point is equal predictions, example by example, not a high accuracy.
    """
    n = int(n)
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(25)
    g = torch.Generator().manual_seed(25)
    x_u8 = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    cifar10_files(out, x_u8, y)
    x = x_u8.float() / 255
    reference = {"labels": y.tolist()}
    for cid, ctor, head in [("preact-resnet18", lambda: ResNetFamily(PreAct, 10, preact=True), "linear"), ("wrn-28-10", lambda: WRN(28, 10, 10), "fc")]:
        model = ctor()
        perturb_bn(model, g)
        model.eval()
        center_head(model, head, x)
        ddp_like = nn.DataParallel(model)  # on a machine without GPUs it only wraps: the names gain 'module.'
        state = {k: v.contiguous() for k, v in ddp_like.state_dict().items()}
        save_file(state, f"{out}/{cid}.module.safetensors")
        reference[cid] = predictions(model, x, y)
        reference[cid]["tensors"] = len(state)
        reference[cid]["float_tensors"] = sum(v.is_floating_point() for v in state.values())
        if cid == "preact-resnet18":
            torch.save(ddp_like.state_dict(), f"{out}/{cid}.pt")
            m = 8  # the dtype variants are compared on the first m inputs' logits
            reference[cid]["dtype_inputs"] = m
            for name, dtype in [("F16", torch.float16), ("BF16", torch.bfloat16), ("F64", torch.float64)]:
                cast = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
                save_file(cast, f"{out}/{cid}.{name}.safetensors")
                # PyTorch's own answer for those stored values: the rounded weights, computed in float32
                rounded = ctor()
                rounded.load_state_dict({k[len("module."):]: v.float() if v.is_floating_point() else v for k, v in cast.items()})
                rounded.eval()
                reference[cid][f"logits_{name}"] = predictions(rounded, x[:m], y[:m])["logits"]
        print(f"{cid}: {len(state)} tensors, PyTorch clean accuracy {reference[cid]['clean_acc']:.4f} on {n} inputs")
    with open(f"{out}/reference.json", "w") as f:
        json.dump(reference, f)


if __name__ == "__main__":
    {"make": make, "check": check, "wrapped": wrapped}[sys.argv[1]](*sys.argv[2:])
