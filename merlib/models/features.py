"""Images -> pre-logits embeddings (the SVM's input) and softmax probabilities.

One forward pass gives both: ``forward_features`` then ``forward_head(pre_logits=True)``
(MobileViT-S: global average pool of the 640-channel map, the 640-d vector), then the
model's own classifier on that vector for the softmax alternative.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def embed(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
          device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Pre-logits features and class probabilities of every image, in batch order.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model (:func:`merlib.models.backbone.create_backbone`); put in eval mode
        here (dropout off, BatchNorm running statistics).
    batches : iterable of (images, labels)
        images of shape (B, 1, H, W), float, already normalised; labels are ignored.
    device : str or torch.device

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), float32
    proba : ndarray of shape (n_samples, n_classes), float32
    """
    model.eval()
    classifier = model.get_classifier()
    feats, probs = [], []
    for images, _ in batches:
        x = model.forward_features(images.to(device))
        f = model.forward_head(x, pre_logits=True)
        feats.append(f.float().cpu())
        probs.append(torch.softmax(classifier(f), dim=1).float().cpu())
    if not feats:
        raise ValueError("batches: expected at least one batch of images, got none")
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()
