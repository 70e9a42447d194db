"""What macro training and micro fine-tuning share: seeds, devices, the optimiser with the
paper's L2 term, one training epoch, and the datasets of a config.

L2 regularisation
-----------------
The paper (Keras) puts an L2 regulariser of scale ``l2`` on convolution and fully
connected weights: ``l2 * sum(w**2)`` is added to the loss. Its gradient, ``2 * l2 * w``,
is exactly what torch's ``weight_decay=2 * l2`` adds to the gradient in both SGD and Adam
(coupled decay, not AdamW). So it is implemented as an optimiser *parameter group*: the
weights of :func:`~merlib.models.backbone.l2_parameters` get ``weight_decay = 2 * l2``,
every other parameter (biases, norms, position embeddings) none. Reported losses are the
cross-entropy alone.
"""
from __future__ import annotations

import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from merlib.config import NetworkConfig
from merlib.errors import ConfigError
from merlib.models.backbone import input_normalisation, l2_parameters
from merlib.models.features import embed
from merlib.training.data import CropDataset, CropSet, PixelPerturbation, eval_loader, train_loader


def derive_seed(base: int, *keys: int | str) -> int:
    """A 31-bit seed for one run (e.g. ``derive_seed(seed, "outer", fold, grid_index)``).

    The same keys give the same seed in any process, so a task seeds alike whether it
    runs serially or on a Dask worker.
    """
    # repr keeps 1 and "1" apart and maps negative ids (-1: no grid point) to valid words.
    words = [int(base) & 0xFFFFFFFF] + [zlib.crc32(repr(k).encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)


def seed_everything(seed: int, num_threads: int) -> torch.Generator:
    """Seed torch, fix its thread count and ask for deterministic kernels.

    Returns
    -------
    torch.Generator
        A separate stream for data order and augmentation (model init and dropout use
        the global one seeded here).
    """
    torch.manual_seed(seed)
    torch.set_num_threads(num_threads)
    # warn_only: the few kernels without a deterministic version warn instead of failing;
    # on CPU the ones MobileViT uses are deterministic.
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed + 1)


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, failing early when CUDA is asked for but absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but torch sees no CUDA device "
                         f"(torch {torch.__version__})")
    return device


def make_optimizer(model: nn.Module, cfg: NetworkConfig) -> torch.optim.Optimizer:
    """SGD (with momentum) or Adam over all parameters, L2 on conv + linear weights only.

    Frozen parameters may be included: optimisers skip parameters without a gradient.
    """
    decay = l2_parameters(model)
    decay_ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in decay_ids]
    groups = [{"params": decay, "weight_decay": 2.0 * cfg.l2}, {"params": rest, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.Adam(groups, lr=cfg.lr)


def make_datasets(crops: CropSet, cfg: NetworkConfig, model: nn.Module,
                  generator: torch.Generator) -> tuple[CropDataset, CropDataset]:
    """(training view with perturbation, evaluation view without) of ``crops``."""
    mean, std = input_normalisation(model)
    perturb = PixelPerturbation(cfg.perturb_p, cfg.perturb_max) if cfg.perturb_p > 0 else None
    train = CropDataset(crops.X, crops.y, image_size=cfg.image_size, mean=mean, std=std,
                        perturb=perturb, generator=generator)
    plain = CropDataset(crops.X, crops.y, image_size=cfg.image_size, mean=mean, std=std)
    return train, plain


def train_epoch(model: nn.Module, dataset: CropDataset, cfg: NetworkConfig,
                optimizer: torch.optim.Optimizer, generator: torch.Generator,
                device: torch.device, *, keep_eval: tuple[nn.Module, ...] = ()) -> dict[str, float]:
    """One pass of balanced (or shuffled) batches; returns mean ``loss`` and ``acc``.

    ``keep_eval`` modules stay in eval mode: frozen stages must not update their
    BatchNorm running statistics either.
    """
    model.train()
    for module in keep_eval:
        module.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for images, labels in train_loader(dataset, cfg.batch_size, balanced=cfg.balanced, generator=generator):
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = len(labels)
        total += n
        loss_sum += loss.item() * n
        correct += int((logits.argmax(1) == labels).sum())
    return {"loss": loss_sum / max(total, 1), "acc": correct / max(total, 1)}


def predict(model: nn.Module, dataset: CropDataset, device: torch.device,
            batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, d), softmax probabilities (n, n_classes)) in dataset order."""
    return embed(model, eval_loader(dataset, batch_size), device)


def eval_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of predicted probabilities, nats."""
    picked = proba[np.arange(len(y)), y]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())
