"""Dev-time cross-check (not CI): the authors' PyTorch formulas on the tiny dense network of
reference-crosscheck.test.ts. Prints JSON; compare.ts diffs atflow against it.

    pip install torch && python3 test/algorithms/attacks/pytorch/torch_reference.py > /tmp/torch-ref.json
    npx tsx test/algorithms/attacks/pytorch/compare.ts /tmp/torch-ref.json
"""
import json
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)
W = torch.tensor([[0.8, -0.5, 0.3], [-0.4, 0.9, -0.2], [0.6, 0.1, -0.7], [-0.3, -0.6, 0.5]])
b = torch.tensor([0.1, -0.2, 0.05])
X = torch.tensor([[0.2, 0.9, 0.5, 0.05], [0.7, 0.3, 0.97, 0.4], [0.5, 0.5, 0.1, 0.8]]).view(3, 1, 2, 2)
Y = torch.tensor([0, 1, 2])
D0 = torch.tensor([[0.01, -0.02, 0.015, -0.005], [-0.01, 0.02, 0.02, 0.0], [0.005, -0.015, -0.01, 0.02]]).view(3, 1, 2, 2)
T = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
EPS, ALPHA, W_TE, BETA = 0.1, 0.06, 20.0, 6.0


def model(x):  # the images are 1×2×2, so NCHW and NHWC flatten to the same order
    return x.reshape(x.shape[0], -1) @ W + b


def linf_step(x_nat, x_adv, loss_fn):
    x_adv = x_adv.detach().requires_grad_()
    grad = torch.autograd.grad(loss_fn(model(x_adv)), [x_adv])[0]
    x_adv = x_adv.detach() + ALPHA * torch.sign(grad.detach())
    x_adv = torch.min(torch.max(x_adv, x_nat - EPS), x_nat + EPS)
    return torch.clamp(x_adv, 0.0, 1.0)


def l2_step(x_nat, x_adv, loss_fn, eps, alpha):
    x_adv = x_adv.detach().requires_grad_()
    grad = torch.autograd.grad(loss_fn(model(x_adv)), [x_adv])[0]
    g = grad / (grad.view(grad.shape[0], -1).norm(dim=1).view(-1, 1, 1, 1) + 1e-10)
    delta = (x_adv.detach() + alpha * g) - x_nat
    delta = delta.renorm(p=2, dim=0, maxnorm=eps)
    return torch.clamp(x_nat + delta, 0.0, 1.0)


kl_sum = nn.KLDivLoss(reduction='sum')  # = size_average=False
logits_nat = model(X).detach()
ce = lambda z: F.cross_entropy(z, Y)
kl = lambda z: kl_sum(F.log_softmax(z, dim=1), F.softmax(logits_nat, dim=1))
te = lambda z: W_TE * ((F.softmax(z, dim=1) - T) ** 2).mean()

X0 = X + D0
out = {}
xa = X
steps = []
for _ in range(2):
    xa = linf_step(X, xa, ce)
    steps.append(xa.flatten().tolist())
out['pgd_steps'] = steps
out['pgd_te_step'] = linf_step(X, X0, lambda z: ce(z) + te(z)).flatten().tolist()
out['trades_step'] = linf_step(X, X0, kl).flatten().tolist()
out['trades_te_step'] = linf_step(X, X0, lambda z: (BETA / 3) * kl(z) + te(z)).flatten().tolist()
out['trades_l2_step'] = l2_step(X, X0, kl, 0.05, 0.04).flatten().tolist()


def value_and_grad(fn):
    x = X0.clone().requires_grad_()
    v = fn(model(x))
    g = torch.autograd.grad(v, [x])[0]
    return {'value': v.item(), 'grad': g.flatten().tolist()}


def mart_loss(logits, logits_adv, beta):  # as YisenWang/MART mart.py, given both logits
    kl_none = nn.KLDivLoss(reduction='none')
    adv_probs = F.softmax(logits_adv, dim=1)
    tmp1 = torch.argsort(adv_probs, dim=1)[:, -2:]
    new_y = torch.where(tmp1[:, -1] == Y, tmp1[:, -2], tmp1[:, -1])
    loss_adv = F.cross_entropy(logits_adv, Y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), new_y)
    nat_probs = F.softmax(logits, dim=1)
    true_probs = torch.gather(nat_probs, 1, (Y.unsqueeze(1)).long()).squeeze()
    loss_robust = (1.0 / len(Y)) * torch.sum(torch.sum(kl_none(torch.log(adv_probs + 1e-12), nat_probs), dim=1) * (1.0000001 - true_probs))
    return loss_adv + float(beta) * loss_robust


out['ce'] = value_and_grad(ce)
out['kl'] = value_and_grad(kl)
out['te300'] = value_and_grad(lambda z: 300.0 * ((F.softmax(z, dim=1) - T) ** 2).mean())
out['trades_loss'] = value_and_grad(lambda z: F.cross_entropy(logits_nat, Y) + BETA * (1.0 / 3) * kl(z))
out['mart'] = value_and_grad(lambda z: mart_loss(logits_nat, z, BETA))

# TRADES training loss with the target NOT detached: gradient w.r.t. the clean input too
xn = X.clone().requires_grad_()
ln = model(xn)
loss = F.cross_entropy(ln, Y) + BETA * (1.0 / 3) * kl_sum(F.log_softmax(model(X0), dim=1), F.softmax(ln, dim=1))
out['trades_loss_grad_nat'] = {'value': loss.item(), 'grad': torch.autograd.grad(loss, [xn])[0].flatten().tolist()}
print(json.dumps(out))
