"""Images -> pre-logits embeddings (the SVM's input) and softmax probabilities.

One forward pass gives both: ``forward_features`` then ``forward_head(pre_logits=True)``
(MobileViT-S: global average pool of the 640-channel map, the 640-d vector), then the
model's own classifier on that vector for the softmax alternative.

Beyond the paper, ``early_grid`` > 0 appends a coarse spatial summary of an early feature
map to that vector: the deepest stride-4 map (MobileViT-XXS at 64 px: 24 channels, 16 x 16),
average-pooled on a ``early_grid`` x ``early_grid`` grid. The global pool keeps *what*
moved but not *where*; a localised micro movement (a brow, a lip corner) is where HOG's
fixed cells beat the pooled vector (``book/beyond.md``). The softmax head is unchanged.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from merlib.errors import ConfigError

#: Stride of the feature map ``early_grid`` summarises (1/4 of the input side).
EARLY_REDUCTION = 4


def early_index(model: nn.Module) -> int:
    """Index, in ``model.feature_info``, of the deepest map at stride :data:`EARLY_REDUCTION`."""
    found = [i for i, f in enumerate(getattr(model, "feature_info", [])) if f.get("reduction") == EARLY_REDUCTION]
    if not found:
        raise ConfigError(f"svm_early_grid: {type(model).__name__} has no stride-{EARLY_REDUCTION} feature map "
                          "(a ViT?); use 0")
    return found[-1]


def early_width(model: nn.Module, early_grid: int) -> int:
    """How many leading columns of the features are the early grid (0 when it is off)."""
    return int(model.feature_info[early_index(model)]["num_chs"]) * early_grid ** 2 if early_grid else 0


class LogitsAndFeatures(nn.Module):
    """A timm model seen as ``image -> (logits, features)``: one forward pass.

    Parameters
    ----------
    model : torch.nn.Module
        A :func:`~merlib.models.backbone.create_backbone` model; put in eval mode.
    early_grid : int, default=0
        0: features are the pooled pre-logits vector (B, F), the paper's. g > 0: the
        stride-4 map (B, C4, H/4, W/4) average-pooled to (B, C4 * g * g), then the pooled
        vector: (B, C4 * g * g + F).
    """

    def __init__(self, model: nn.Module, early_grid: int = 0) -> None:
        super().__init__()
        if not (isinstance(early_grid, int) and not isinstance(early_grid, bool) and early_grid >= 0):
            raise ConfigError(f"svm_early_grid: expected an int >= 0, got {early_grid!r}")
        self.model = model.eval()
        self.early_grid = early_grid
        self.early_index = early_index(model) if early_grid else -1

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.early_grid:
            pooled = self.model.forward_head(self.model.forward_features(image), pre_logits=True)
            return self.model.get_classifier()(pooled), pooled
        # forward_intermediates' final map is forward_features' output, bit for bit.
        final, (early,) = self.model.forward_intermediates(image, indices=[self.early_index])
        pooled = self.model.forward_head(final, pre_logits=True)
        grid = F.adaptive_avg_pool2d(early, self.early_grid).flatten(1)
        return self.model.get_classifier()(pooled), torch.cat([grid, pooled], 1)


@torch.no_grad()
def embed(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
          device: str | torch.device = "cpu", early_grid: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features and class probabilities of every image, in batch order.

    Parameters
    ----------
    model : torch.nn.Module
        A timm model (:func:`merlib.models.backbone.create_backbone`); put in eval mode
        here (dropout off, BatchNorm running statistics).
    batches : iterable of (images, labels)
        images of shape (B, 1, H, W), float, already normalised; labels are ignored.
    device : str or torch.device
    early_grid : int, default=0
        See :class:`LogitsAndFeatures`.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), float32
    proba : ndarray of shape (n_samples, n_classes), float32
    """
    heads = LogitsAndFeatures(model, early_grid)
    feats, probs = [], []
    for images, _ in batches:
        logits, f = heads(images.to(device))
        feats.append(f.float().cpu())
        probs.append(torch.softmax(logits, dim=1).float().cpu())
    if not feats:
        raise ValueError("batches: expected at least one batch of images, got none")
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()
