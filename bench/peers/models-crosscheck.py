"""
Dev check (not CI): atflow's models against PyTorch definitions of the same architectures.

  python3 bench/peers/models-crosscheck.py make  DIR   # PyTorch weights + inputs + reference outputs
  npx tsx bench/peers/models-crosscheck.ts        DIR   # atflow loads them, compares, writes its own checkpoints
  python3 bench/peers/models-crosscheck.py check DIR   # PyTorch loads atflow's checkpoints (strict) and compares

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


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
