import importlib
import types

import pytest

from merlib import _torch_compat


def test_import_timm_builds_mobilevit_s_one_channel():
    timm = _torch_compat.import_timm()
    import torch

    model = timm.create_model("mobilevit_s", pretrained=False, num_classes=3, in_chans=1)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 4_939_267  # 4.94 M with a 3-class head, as timm's MobileViT-S
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 256, 256))
    assert out.shape == (1, 3)
    assert torch.isfinite(out).all()


def test_import_torchvision_is_idempotent():
    first = _torch_compat.import_torchvision()
    second = _torch_compat.import_torchvision()
    assert first is second
    assert hasattr(first, "transforms")


def test_working_torchvision_is_left_alone(monkeypatch):
    """Where torchvision imports normally, nothing is defined or purged."""
    fake = types.ModuleType("torchvision")
    calls = []
    monkeypatch.setattr(_torch_compat, "_define_schemas", lambda: calls.append("define"))
    monkeypatch.setattr(importlib, "import_module", lambda name: fake)
    assert _torch_compat.import_torchvision() is fake
    assert calls == []


def test_unrelated_runtime_error_propagates(monkeypatch):
    def broken(name):
        raise RuntimeError("something else entirely")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(RuntimeError, match="something else"):
        _torch_compat.import_torchvision()


def test_importing_timm_in_a_kernel_prints_no_tqdm_warning():
    """timm -> huggingface_hub -> tqdm.auto warned 'IProgress not found' into book pages."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "from merlib._torch_compat import import_timm\nimport_timm()\nprint('imported')"))
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert "imported" in text
    assert "IProgress" not in text
