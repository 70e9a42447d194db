"""The SVM's features: the pooled vector (paper) and the early grid in front of it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from merlib.config import FinetuneConfig
from merlib.errors import ConfigError
from merlib.models.backbone import create_backbone
from merlib.models.features import LogitsAndFeatures, early_index, embed


@pytest.fixture(scope="module")
def xxs() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_backbone("mobilevit_xxs", image_size=64).eval()


def _batches(images: torch.Tensor, size: int = 4):
    return [(images[i:i + size], torch.zeros(len(images[i:i + size]))) for i in range(0, len(images), size)]


def test_pooled_features_are_the_pre_logits_vector(xxs: torch.nn.Module) -> None:
    images = torch.randn(6, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    feats, proba = embed(xxs, _batches(images))
    with torch.no_grad():
        pooled = xxs.forward_head(xxs.forward_features(images), pre_logits=True)
        logits = xxs(images)
    assert feats.shape == (6, 320) and proba.shape == (6, 3)
    np.testing.assert_allclose(feats, pooled.numpy(), atol=1e-5)
    np.testing.assert_allclose(proba, torch.softmax(logits, 1).numpy(), atol=1e-6)


def test_early_grid_puts_the_stride4_map_pooled_on_a_grid_in_front(xxs: torch.nn.Module) -> None:
    images = torch.randn(5, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    plain, proba0 = embed(xxs, _batches(images))
    feats, proba = embed(xxs, _batches(images), early_grid=4)
    # MobileViT-XXS: stride-4 map of 24 channels, 16 x 16 at 64 px; 24 * 4 * 4 = 384 grid values.
    assert early_index(xxs) == 1
    assert feats.shape == (5, 384 + 320)
    np.testing.assert_array_equal(feats[:, 384:], plain)  # the pooled vector is unchanged
    np.testing.assert_array_equal(proba, proba0)  # so is the softmax head
    with torch.no_grad():
        stage1 = xxs.stages[1](xxs.stages[0](xxs.stem(images)))
    assert stage1.shape == (5, 24, 16, 16)
    # Cell (row 0, column 1) of channel 0 is the mean of rows 0-3, columns 4-7.
    np.testing.assert_allclose(feats[:, 1], stage1[:, 0, 0:4, 4:8].mean((1, 2)).numpy(), atol=1e-5)
    np.testing.assert_allclose(feats[:, :384], F.adaptive_avg_pool2d(stage1, 4).flatten(1).numpy(), atol=1e-5)


@pytest.mark.parametrize("arch, channels", [("mobilenetv2_100", 24), ("resnet18", 64)])
def test_early_grid_on_the_comparison_cnns(arch: str, channels: int) -> None:
    model = create_backbone(arch, image_size=64).eval()
    logits, feats = LogitsAndFeatures(model, 2)(torch.zeros(2, 1, 64, 64))
    assert logits.shape == (2, 3)
    assert feats.shape == (2, channels * 4 + model.num_features)


def test_early_grid_errors_name_the_parameter() -> None:
    vit = create_backbone("deit_tiny", image_size=64)
    with pytest.raises(ConfigError, match="svm_early_grid: VisionTransformer has no stride-4"):
        LogitsAndFeatures(vit, 4)
    with pytest.raises(ConfigError, match="svm_early_grid: expected an int >= 0, got -1"):
        LogitsAndFeatures(vit, -1)
    with pytest.raises(ConfigError, match="svm_early_grid"):
        FinetuneConfig(arch="deit_tiny", image_size=64, svm_early_grid=4)
    with pytest.raises(ConfigError, match="svm_early_grid"):
        FinetuneConfig(svm_early_grid=2.5)
    with pytest.raises(ConfigError, match=r"svm_early_grid: expected 0 or a divisor of image_size / 4 = 16"):
        FinetuneConfig(arch="mobilevit_xxs", image_size=64, svm_early_grid=3)
    with pytest.raises(ConfigError, match="svm_early_grid: expected an int >= 0, got True"):
        LogitsAndFeatures(create_backbone("mobilevit_xxs", image_size=64), True)
    assert FinetuneConfig(arch="mobilevit_xxs", image_size=64, svm_early_grid=8).svm_early_grid == 8
    assert FinetuneConfig(arch="deit_tiny", image_size=64).svm_early_grid == 0
