"""Linear probes on a frozen encoder: the stage-0 row of the accuracy matrix, tasks not trained yet, and
probe-recovered accuracy (a task's head refit on the final encoder). A probe that recovers what the old
head lost shows the knowledge is still in the encoder and only the head is confused (Davari et al. 2022,
"Probing Representation Forgetting", arXiv 2203.13381).

Features: the mean of the last layer's states over an example's tokens (sequence tasks), or each
word's first sub-token state (token tasks). The probe is multinomial logistic regression fitted by
full-batch L-BFGS with a small L2 penalty, so it has no learning rate to tune.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from masklab.data.labelled import batches as eval_batches
from masklab.finetune.metrics import classification_metrics
from masklab.runtime import autocast_context, device_of

PROBE_L2 = 1e-3
PROBE_ITERATIONS = 200


@torch.no_grad()
def features(
    cm, task: int, examples: list[dict], kind: str, pad_id: int, precision: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H) features and (N,) labels (token tasks: one row per labelled word)."""
    was = cm.training
    cm.eval()
    xs, ys = [], []
    device = device_of(cm)
    for batch in eval_batches(examples, 64, pad_id):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast_context(precision, device.type):
            hidden = cm.hidden_states(task, batch).float()  # (B, T, H)
        if kind == "token":
            keep = batch["labels"] != -100
            xs.append(hidden[keep])
            ys.append(batch["labels"][keep])
        else:
            mask = batch["attention_mask"].unsqueeze(-1).float()
            xs.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
            ys.append(batch["labels"])
    cm.train(was)
    return torch.cat(xs).cpu(), torch.cat(ys).cpu()  # the probe is fitted on the CPU


def fit_probe(
    x: torch.Tensor, y: torch.Tensor, num_labels: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights, bias and the standardisation (mean, std) of a logistic-regression probe."""
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / std
    w = torch.zeros(z.shape[1], num_labels, requires_grad=True)
    b = torch.zeros(num_labels, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=PROBE_ITERATIONS, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(z @ w + b, y) + PROBE_L2 * w.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach(), b.detach(), mean, std


def probe_accuracy(
    cm, task: int, train: list[dict], test: list[dict], kind: str, num_labels: int, pad_id: int, precision: str
) -> float:
    """Test accuracy of a linear probe fitted on `train` over the current encoder (task `task`'s adapter)."""
    x, y = features(cm, task, train, kind, pad_id, precision)
    w, b, mean, std = fit_probe(x, y, num_labels)
    xt, yt = features(cm, task, test, kind, pad_id, precision)
    pred = (((xt - mean) / std) @ w + b).argmax(-1)
    return classification_metrics(pred, yt, num_labels)["accuracy"]
