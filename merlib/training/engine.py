"""What macro training and micro fine-tuning share: seeds, devices, the optimiser with the
paper's L2 term, one training epoch, BatchNorm recalibration and prediction.

It consumes the batches of :mod:`merlib.training.batches` (which builds a config's
training and evaluation views of a crop set, balancing included) and never looks inside
them.

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

import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from merlib.config import NetworkConfig
from merlib.errors import ConfigError
from merlib.models.backbone import l2_parameters
from merlib.models.features import embed
from merlib.training.batches import CropDataset, eval_loader, train_loader

def derive_seed(base: int, *keys: int | str) -> int:
    """A 31-bit seed for one run (e.g. ``derive_seed(seed, "outer", fold, grid_index)``).

    The same keys give the same seed in any process, so a task seeds alike whether it
    runs serially or on a Dask worker.
    """
    # repr keeps 1 and "1" apart and maps negative ids (-1: no grid point) to valid words.
    words = [int(base) & 0xFFFFFFFF] + [zlib.crc32(repr(k).encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)


def seed_everything(seed: int, num_threads: int) -> torch.Generator:
    """Seed torch, fix its thread count and ask for deterministic kernels, CPU and GPU.

    What PyTorch's reproducibility notes require, all set here:

    - ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS picks reduction orders per workspace
      otherwise). It is read when the CUDA context starts, so it is put in the
      environment unless already set; a process that touched CUDA before its first call
      here keeps what it had (set the variable before starting such a process).
    - ``torch.use_deterministic_algorithms(True)``: an op with no deterministic CUDA
      kernel then raises instead of silently varying. The one such op on the path of the
      convolutional backbones, adaptive average pooling's backward, is not used:
      :func:`~merlib.models.backbone.create_backbone` pools with a plain mean over H, W
      (deterministic backward), the same numbers forward.
    - cuDNN: ``deterministic = True`` and ``benchmark = False`` (benchmarking picks the
      fastest, not the same, convolution algorithm per run).

    Returns
    -------
    torch.Generator
        A separate stream for data order and augmentation (model init and dropout use
        the global one seeded here).
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)  # seeds every CUDA device too
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
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
    ``foreach``: one multi-tensor update instead of a Python loop over the tensors, the
    same numbers bit for bit (torch picks it by default on GPUs only); ``fused`` would be
    faster still on a CPU, but rounds differently.
    """
    decay = l2_parameters(model)
    decay_ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in decay_ids]
    groups = [{"params": decay, "weight_decay": 2.0 * cfg.l2}, {"params": rest, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, foreach=True)
    return torch.optim.Adam(groups, lr=cfg.lr, foreach=True)


def train_epoch(model: nn.Module, dataset: CropDataset, cfg: NetworkConfig,
                optimizer: torch.optim.Optimizer, generator: torch.Generator,
                device: torch.device, *, keep_eval: tuple[nn.Module, ...] = ()) -> dict[str, float]:
    """One pass over ``dataset`` in shuffled (``cfg.balance="sampler"``: class-balanced)
    batches; returns mean ``loss`` and ``acc`` (train mode: batch statistics, dropout).

    ``keep_eval`` modules stay in eval mode: frozen stages must not update their
    BatchNorm running statistics either.
    """
    model.train()
    for module in keep_eval:
        module.eval()
    total, correct, loss_sum = 0, 0, 0.0
    # "augment" balanced the dataset itself; only "sampler" balances each batch.
    batches = train_loader(dataset, cfg.batch_size, balanced=cfg.balance == "sampler", generator=generator)
    for images, labels in batches:
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


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, dataset: CropDataset, device: torch.device, batch_size: int,
                          generator: torch.Generator, *, keep: tuple[nn.Module, ...] = ()) -> int:
    """Recompute every BatchNorm's running statistics for the final weights.

    Training normalises with the statistics of each batch; prediction (eval mode) with
    the running averages, updated by momentum (0.1) while the weights moved. After a
    short fine-tuning, those averages describe early weights, not the final ones, and
    eval-mode predictions collapse: measured on the smoke profile (3 epochs), training
    accuracy 0.80 with batch statistics and 0.33, chance, in eval mode
    (``bench/learning_probe.py``). Here the statistics are averaged afresh (equal
    weights, ``momentum=None``) over one pass of shuffled batches of ``dataset``,
    without gradients, dropout or augmentation; only BatchNorm layers see train mode.

    Parameters
    ----------
    model : torch.nn.Module
    dataset : CropDataset
        Training crops only (never a test subject), without perturbation.
    device : torch.device
    batch_size : int
        As in training: the per-batch statistics then match what the weights were
        trained with.
    generator : torch.Generator
        Batch order.
    keep : tuple of torch.nn.Module
        Modules whose BatchNorms keep their statistics (stages still frozen at the end
        trained on their transferred statistics).

    Returns
    -------
    int
        Number of BatchNorm layers recalibrated.
    """
    kept = {id(m) for k in keep for m in k.modules()}
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in kept]
    if not norms:
        return 0
    was_training = model.training
    model.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    for images, _ in train_loader(dataset, batch_size, balanced=False, generator=generator):
        model(images.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)


def predict(model: nn.Module, dataset: CropDataset, device: torch.device,
            batch_size: int = 64, early_grid: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, d), softmax probabilities (n, n_classes)) in dataset order;
    ``early_grid`` is :attr:`~merlib.config.FinetuneConfig.svm_early_grid`."""
    return embed(model, eval_loader(dataset, batch_size), device, early_grid)


def eval_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of predicted probabilities, nats."""
    picked = proba[np.arange(len(y)), y]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())
