"""Backbones from timm: MobileViT-S/XS/XXS (the paper's) and the comparison networks.

Paper: Mehta & Rastegari (2021), MobileViT, arXiv:2110.02178, as used by Liu et al. (2022);
timm's implementation (Apache-2.0), which matches Apple's ml-cvnets layout.

Every network here has one grey input channel, a 3-class head behind dropout (timm's
``drop_rate``) and random initialisation: no pretrained weights can be fetched, and the
paper trains from macro-expressions rather than ImageNet anyway.

Each backbone names its *convolutional feature extractor* as an ordered list of stages,
each stage a tuple of module-name prefixes, input side first. For MobileViT these are the
stem and the MobileNetV2 (MV2) blocks, the part the paper trains on macro-expressions and
transfers; the MobileViT blocks (transformers) and the head are not in it. Transfer
(:func:`feature_extractor_state`, :func:`load_feature_extractor`) and gradual unfreezing
(:mod:`merlib.training.finetune`) both walk these stages.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from merlib._torch_compat import import_timm
from merlib.data.schema import LABELS

Stages = list[tuple[str, ...]]


def _mobilevit_stages(model: nn.Module) -> Stages:
    # Each of the five stages opens with MV2 blocks (BottleneckBlock); stages 2-4 then
    # hold one MobileVitBlock, which stays out: it is the transformer part.
    stages: Stages = []
    for i, stage in enumerate(model.stages):
        mv2 = tuple(f"stages.{i}.{j}" for j, block in enumerate(stage)
                    if type(block).__name__ == "BottleneckBlock")
        stages.append(("stem", *mv2) if i == 0 else mv2)
    return stages


def _efficientnet_stages(model: nn.Module) -> Stages:
    stages: Stages = [(f"blocks.{i}",) for i in range(len(model.blocks))]
    stages[0] = ("conv_stem", "bn1", *stages[0])
    # MobileNetV2 (timm class EfficientNet) applies conv_head before pooling: a
    # convolution on the feature map. MobileNetV3 applies it after pooling: a head.
    if type(model).__name__ == "EfficientNet":
        stages[-1] = (*stages[-1], "conv_head", "bn2")
    return stages


def _resnet_stages(model: nn.Module) -> Stages:
    return [("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",)]


def _vit_stages(model: nn.Module) -> Stages:
    return [("patch_embed",)]  # a ViT's only convolution


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and where its convolutional feature extractor is.

    Attributes
    ----------
    timm_name : str
        Name passed to ``timm.create_model``.
    conv_stages : callable
        model -> ordered stages of module-name prefixes (input side first).
    sized : bool
        The model must be built for its input size (ViTs: position embeddings).
    """

    timm_name: str
    conv_stages: Callable[[nn.Module], Stages]
    sized: bool = False


#: merlib name -> spec. The paper's model is ``mobilevit_s``; the others are Table 2's
#: comparison networks and the two smaller MobileViTs.
BACKBONES: dict[str, BackboneSpec] = {
    "mobilevit_s": BackboneSpec("mobilevit_s", _mobilevit_stages),
    "mobilevit_xs": BackboneSpec("mobilevit_xs", _mobilevit_stages),
    "mobilevit_xxs": BackboneSpec("mobilevit_xxs", _mobilevit_stages),
    "mobilenetv2_100": BackboneSpec("mobilenetv2_100", _efficientnet_stages),
    "mobilenetv3_large_100": BackboneSpec("mobilenetv3_large_100", _efficientnet_stages),
    "resnet18": BackboneSpec("resnet18", _resnet_stages),
    "deit_tiny": BackboneSpec("deit_tiny_patch16_224", _vit_stages, sized=True),
    "deit_small": BackboneSpec("deit_small_patch16_224", _vit_stages, sized=True),
    "vit_base": BackboneSpec("vit_base_patch16_224", _vit_stages, sized=True),
}


def _spec(arch: str) -> BackboneSpec:
    if arch not in BACKBONES:
        raise ValueError(f"arch: expected one of {sorted(BACKBONES)}, got {arch!r}")
    return BACKBONES[arch]


def create_backbone(arch: str = "mobilevit_s", *, num_classes: int = len(LABELS),
                    image_size: int = 256, drop_rate: float = 0.5) -> nn.Module:
    """A randomly initialised timm model with one input channel.

    Parameters
    ----------
    arch : str, default="mobilevit_s"
        A key of :data:`BACKBONES`.
    num_classes : int, default=3
    image_size : int, default=256
        Input side, pixels. Only ViTs are built for it; the convolutional networks accept
        any size that survives their downsampling (MobileViT: a multiple of 32).
    drop_rate : float, default=0.5
        Dropout before the classifier.

    Returns
    -------
    torch.nn.Module
        Maps (B, 1, image_size, image_size) float to (B, num_classes) logits. The model
        remembers ``arch`` in ``model.merlib_arch``.

    Examples
    --------
    >>> m = create_backbone("mobilevit_s")
    >>> count_parameters(m)
    4939267
    """
    spec = _spec(arch)
    timm = import_timm()
    # Convolutional networks pool with a plain mean over H, W ("fastavg"): the same
    # numbers as adaptive average pooling, whose CUDA backward has no deterministic
    # kernel (torch.use_deterministic_algorithms would refuse it). ViTs pool tokens.
    extra = {"img_size": image_size} if spec.sized else {"global_pool": "fastavg"}
    model = timm.create_model(spec.timm_name, pretrained=False, num_classes=num_classes,
                              in_chans=1, drop_rate=drop_rate, **extra)
    model.merlib_arch = arch
    return model


def arch_of(model: nn.Module) -> str:
    """The :data:`BACKBONES` key a model was built for (by :func:`create_backbone`)."""
    arch = getattr(model, "merlib_arch", None)
    if arch is None:
        raise ValueError("model: expected a model from create_backbone() (no merlib_arch attribute)")
    return arch


def conv_stages(model: nn.Module) -> Stages:
    """The convolutional feature extractor's stages, input side first.

    Returns
    -------
    list of tuple of str
        Module-name prefixes; a parameter or buffer ``name`` belongs to a stage when
        ``name`` starts with one of its prefixes followed by a dot.
    """
    return _spec(arch_of(model)).conv_stages(model)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name.startswith(p + ".") for p in prefixes)


def conv_state_keys(model: nn.Module) -> list[str]:
    """Names of the state entries (parameters and BatchNorm buffers) of the extractor."""
    prefixes = tuple(p for stage in conv_stages(model) for p in stage)
    return [k for k in model.state_dict() if _under(k, prefixes)]


def feature_extractor_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The convolutional feature extractor's weights and buffers, detached CPU copies.

    This is what the paper saves after macro training ("the MobileNetV2 block ... as a
    facial expression feature extractor"); the copies are contiguous and unshared, as
    safetensors requires.
    """
    state = model.state_dict()
    return {k: state[k].detach().to("cpu", copy=True).contiguous() for k in conv_state_keys(model)}


def load_feature_extractor(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy transferred extractor weights into ``model``; returns the keys loaded.

    Raises
    ------
    ValueError
        When ``state`` lacks an extractor key of ``model``, holds a key outside it, or a
        shape differs (transferring between different architectures).
    """
    expected = conv_state_keys(model)
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"state: does not match the feature extractor of {arch_of(model)}: "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}")
    load_weights(model, state, strict=False)
    return expected


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], *, strict: bool = True,
                 skip_classifier: bool = False) -> list[str]:
    """``model.load_state_dict`` with a shape check that names the offending key.

    ``skip_classifier`` drops the final linear layer's entries (a transferred head is
    trained for other samples, and may have another class count). Returns the keys loaded.
    """
    own = model.state_dict()
    if skip_classifier:
        head = _classifier_prefix(model)
        state = {k: v for k, v in state.items() if not _under(k, (head,))}
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise ValueError(f"state: {key} has shape {tuple(value.shape)}, "
                             f"the model expects {tuple(own[key].shape)}")
    model.load_state_dict(state, strict=strict and not skip_classifier)
    return [k for k in own if k in state]


def _classifier_prefix(model: nn.Module) -> str:
    classifier = model.get_classifier()
    for name, module in model.named_modules():
        if module is classifier:
            return name
    raise ValueError("model: its classifier is not one of its modules")


def input_normalisation(model: nn.Module) -> tuple[float, float]:
    """Grey-channel mean and std the model expects on [0, 1] pixels, from timm's config.

    Read from the pretrained config with ``resolve_model_data_config``; a 3-channel
    statistic is averaged over channels (a grey pixel is the mean of R, G, B).
    MobileViT: mean 0, std 1 (plain [0, 1] pixels).
    """
    timm = import_timm()
    cfg = timm.data.resolve_model_data_config(model)
    mean, std = cfg["mean"], cfg["std"]
    return float(sum(mean) / len(mean)), float(sum(std) / len(std))


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def l2_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The weights the paper's L2 regularisation covers: every convolution and fully
    connected layer's weight (transformer projections included); no bias, no norm."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def feature_dim(model: nn.Module) -> int:
    """Length of the pre-logits feature vector (MobileViT-S: 640)."""
    return int(model.num_features if not hasattr(model, "head_hidden_size") else model.head_hidden_size)
