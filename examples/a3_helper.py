"""The course's helper module, as far as the models use it: the losses EECS 498/598 gives
its students in ``a3_helper.py`` (written here, not copied), softmax cross-entropy and the
multiclass SVM loss on torch tensors, each returning ``(loss, dx)``."""

import torch


def svm_loss(x, y):
    n = x.shape[0]
    correct = x[torch.arange(n), y]
    margins = (x - correct[:, None] + 1.0).clamp(min=0.0)
    margins[torch.arange(n), y] = 0.0
    loss = margins.sum() / n
    dx = torch.zeros_like(x)
    dx[margins > 0] = 1.0
    dx[torch.arange(n), y] -= (margins > 0).sum(dim=1).to(dx.dtype)
    return loss, dx / n


def softmax_loss(x, y):
    shifted = x - x.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    n = x.shape[0]
    loss = -log_probs[torch.arange(n), y].sum() / n
    dx = log_probs.exp()
    dx[torch.arange(n), y] -= 1
    return loss, dx / n
