"""Backbones: sizes, features, the convolutional extractor, normalisation, L2 scope."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from merlib.models.backbone import (BACKBONES, conv_stages, conv_state_keys, count_parameters,
                                    create_backbone, feature_dim, feature_extractor_state,
                                    input_normalisation, l2_parameters, load_feature_extractor)
from merlib.models.features import embed


@pytest.fixture(scope="module")
def mobilevit_s():
    torch.manual_seed(0)
    return create_backbone("mobilevit_s")


def test_mobilevit_s_size_and_640d_features(mobilevit_s):
    assert count_parameters(mobilevit_s) == 4_939_267
    assert mobilevit_s.head.drop.p == 0.5
    x = torch.rand(2, 1, 64, 64)  # 64 px keeps the test fast; the layout is size-independent
    feats, proba = embed(mobilevit_s, [(x, torch.zeros(2))])
    assert feats.shape == (2, 640) and feature_dim(mobilevit_s) == 640
    assert proba.shape == (2, 3) and abs(proba.sum(1) - 1).max() < 1e-5


def test_extractor_is_stem_and_mv2_blocks_only(mobilevit_s):
    stages = conv_stages(mobilevit_s)
    assert stages == [("stem", "stages.0.0"), ("stages.1.0", "stages.1.1", "stages.1.2"),
                      ("stages.2.0",), ("stages.3.0",), ("stages.4.0",)]
    keys = conv_state_keys(mobilevit_s)
    assert keys and not any("transformer" in k or k.startswith("head") or "stages.2.1" in k for k in keys)
    assert any(k.endswith("running_mean") for k in keys)  # BatchNorm statistics travel too


def test_extractor_round_trip_loads_exact_tensors(mobilevit_s):
    state = feature_extractor_state(mobilevit_s)
    torch.manual_seed(1)
    other = create_backbone("mobilevit_s")
    loaded = load_feature_extractor(other, state)
    own = other.state_dict()
    assert loaded == list(state) and all(torch.equal(own[k], v) for k, v in state.items())
    assert not torch.equal(own["head.fc.weight"], mobilevit_s.state_dict()["head.fc.weight"])
    with pytest.raises(ValueError, match=r"state: stages\.0\.0\..* has shape"):
        load_feature_extractor(create_backbone("mobilevit_xxs"), state)


def test_normalisation_comes_from_timm_config(mobilevit_s):
    assert input_normalisation(mobilevit_s) == (0.0, 1.0)
    mean, std = input_normalisation(create_backbone("resnet18"))
    assert mean == pytest.approx((0.485 + 0.456 + 0.406) / 3) and std < 1


def test_l2_covers_conv_and_linear_weights_only(mobilevit_s):
    covered = {id(p) for p in l2_parameters(mobilevit_s)}
    for name, p in mobilevit_s.named_parameters():
        assert (id(p) in covered) == (name.endswith("weight") and p.ndim in (2, 4)), name
    assert any("qkv.weight" in n for n, p in mobilevit_s.named_parameters() if id(p) in covered)


@pytest.mark.parametrize("arch", [a for a in BACKBONES if a not in ("mobilevit_s", "vit_base")])
def test_comparison_backbones_build_and_run_on_grey_64px(arch):
    model = create_backbone(arch, image_size=64)
    stages = conv_stages(model)
    assert stages and conv_state_keys(model)
    feats, _ = embed(model, [(torch.rand(1, 1, 64, 64), torch.zeros(1))])
    assert feats.shape == (1, feature_dim(model))


def test_unknown_arch_names_the_choices():
    with pytest.raises(ValueError, match=r"arch: expected one of \[.*'mobilevit_s'.*\], got 'vgg'"):
        create_backbone("vgg")
    assert isinstance(create_backbone("mobilevit_xxs"), nn.Module)


@pytest.mark.parametrize("arch", ["mobilevit_xxs", "mobilenetv2_100", "resnet18"])
def test_convolutional_backbones_pool_with_a_plain_mean(arch):
    # Adaptive average pooling has no deterministic CUDA backward; a mean over H, W has,
    # and gives the same features.
    torch.manual_seed(0)
    model = create_backbone(arch, image_size=64).eval()
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in model.modules())
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        fmap = model.forward_features(x)
        pooled = model.forward_head(fmap, pre_logits=True)
    assert torch.allclose(pooled, fmap.mean((2, 3)), atol=1e-6)
