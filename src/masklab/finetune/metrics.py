"""Task metrics for classification: accuracy, macro-F1 and loss over labelled positions."""

from __future__ import annotations

import torch

from masklab.objectives.classify import ClassifyObjective, classification_loss
from masklab.runtime import autocast_context, device_of


def classification_metrics(pred: torch.Tensor, gold: torch.Tensor, num_labels: int) -> dict:
    """Accuracy and macro-F1 (mean F1 over the labels that occur in gold or predictions)."""
    confusion = (
        torch.bincount(gold * num_labels + pred, minlength=num_labels**2).reshape(num_labels, num_labels).double()
    )
    tp = confusion.diag()
    support, predicted = confusion.sum(1), confusion.sum(0)
    f1 = 2 * tp / (support + predicted).clamp(min=1)
    present = (support + predicted) > 0
    return {"accuracy": float(tp.sum() / confusion.sum().clamp(min=1)), "macro_f1": float(f1[present].mean())}


@torch.no_grad()
def evaluate_classifier(
    objective: ClassifyObjective, eval_batches: list[dict], num_labels: int, precision: str
) -> dict:
    """{"loss", "accuracy", "macro_f1"} over every labelled position of `eval_batches`, in eval mode."""
    was_training = objective.training
    objective.eval()
    device = device_of(objective)
    preds, golds, total = [], [], 0.0
    for batch in eval_batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast_context(precision, device.type):
            logits = objective.logits(batch)
        keep = batch["labels"].reshape(-1) != -100
        total += float(classification_loss(logits, batch["labels"])) * int(keep.sum())
        preds.append(logits.reshape(-1, logits.shape[-1]).argmax(-1)[keep].cpu())
        golds.append(batch["labels"].reshape(-1)[keep].cpu())
    objective.train(was_training)
    pred, gold = torch.cat(preds), torch.cat(golds)
    return {"loss": total / max(len(gold), 1), **classification_metrics(pred, gold, num_labels)}
