"""The paper profile wired end to end on CPU, with only the sizes shrunk (issue 22).

``--profile paper`` is the paper's method: MobileViT-S at 256 x 256, macro training with
SGD (lr 0.01, momentum 0.9, batch 32), fine-tuning with Adam (lr 0.007, batch 64), L2
0.01 on every convolution and fully connected weight, dropout 0.5 before the classifier,
the stem and the MobileNetV2 (MV2) blocks transferred and unfrozen one stage at a time,
deepest first, between 20% and 60% of the epochs, and an SVM on the pooled features.

Here it runs through the commands a user runs -- ``merlib train-macro``, ``fit``,
``export``, ``predict`` with ``--profile paper`` -- on a handful of the tiny SynthME
root's aligned crops: one macro epoch, and nine fine-tuning epochs (the fewest at which
the five stages unfreeze at five different epochs), one optimisation step each (every
batch holds the whole tiny set). Only the epoch counts, the data and the thread count are
shrunk; everything the paper fixes is compared with literal values, never with the code
that computes them, so a wrong block count, unfreezing order, image size, L2 term or
dropout fails here. ``merlib evaluate`` (LOSO with the grid search) at these settings
takes minutes even in miniature: ``bench/paper_profile.py`` runs it; the grid's values
are checked here.

The functions the commands call are wrapped (never replaced) to watch the run: the
backbone factory records the input sizes the network sees, the optimiser factory the
optimisers, and fine-tuning gets an epoch hook that records which parameters received
a gradient and what the transferred tensors hold after each epoch.
"""
from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from merlib.cli import main
from merlib.config import get_profile
from merlib.data.schema import LABELS
from merlib.training.crops import CropSet, save_crop_set

#: The transferred feature extractor of MobileViT-S, stage by stage, input side first:
#: the stem and the seven MV2 blocks (timm's layout of Apple's MobileViT). The MobileViT
#: blocks (``stages.2.1``, ``stages.3.1``, ``stages.4.1``) and the head are not in it.
EXTRACTOR_STAGES: list[tuple[str, ...]] = [
    ("stem", "stages.0.0"),
    ("stages.1.0", "stages.1.1", "stages.1.2"),
    ("stages.2.0",),
    ("stages.3.0",),
    ("stages.4.0",),
]
#: Fine-tuning epochs of the miniature run.
EPOCHS = 9
#: The epoch (0-based) from which each stage above trains: unfreezing between 20% and 60%
#: of 9 epochs, deepest first, so the stem stage is the last to join.
UNFREEZE_AT: list[int] = [5, 4, 3, 2, 1]
#: The paper's input side, pixels.
SIZE = 256
#: Length of MobileViT-S's pooled feature vector: what the SVM is fitted on.
FEATURES = 640
#: torch threads: the profile's 4 would oversubscribe a 2-core test machine (a machine
#: setting, not one of the paper's).
THREADS = "2"


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name.startswith(p + ".") for p in prefixes)


def _stage_params(model: nn.Module, stage: tuple[str, ...]) -> list[torch.Tensor]:
    return [p for n, p in model.named_parameters() if _under(n, stage)]


def _pick(crops: CropSet, wanted: list[tuple[str, str]]) -> CropSet:
    """The first crop of each (subject key, label) in ``wanted``, in that order."""
    groups, labels = crops.groups, crops.meta["label"].to_numpy()
    idx = [int(np.flatnonzero((groups == g) & (labels == c))[0]) for g, c in wanted]
    return crops.subset(idx)


@pytest.fixture(scope="module")
def tiny_sets(synth_root: Path) -> dict[str, CropSet]:
    """Four macro crops (two subjects, two classes each: one subject trains, the other
    picks the best epoch) and three micro crops (one per class) of the tiny root, aligned
    at the paper's 256 px by the pre-processing. One batch each: one step per epoch."""
    from merlib.training.crops import prepare_crop_sets

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*composite samples present")
        crops = prepare_crop_sets(synth_root, sets=("composite", "macro"), allow_missing=True)
    macro_subjects = sorted(set(crops["macro"].groups))[:2]
    macro = _pick(crops["macro"], [(g, c) for g in macro_subjects for c in ("negative", "positive")])
    # Every class, so that the SVM has three classes to separate (CASME II's sub17 is the
    # tiny root's only composite subject with all three).
    micro = _pick(crops["composite"], [("casme2/sub17", c) for c in LABELS])
    return {"macro": macro, "micro": micro}


@pytest.fixture(scope="module")
def paper_run(tiny_sets: dict[str, CropSet], synth_root: Path,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """train-macro -> fit -> export -> predict with ``--profile paper``, watched."""
    # By module path: the package re-exports a function named ``finetune``.
    finetune_mod = importlib.import_module("merlib.training.finetune")
    transfer_mod = importlib.import_module("merlib.training.transfer")

    work = tmp_path_factory.mktemp("paper")
    seen: dict[str, Any] = {"inputs": [], "optimizers": [], "epochs": [], "finetune": []}

    def watch_inputs(create: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        def wrapped(*args: Any, **kwargs: Any) -> nn.Module:
            model = create(*args, **kwargs)
            model.stem.register_forward_pre_hook(lambda _m, inp: seen["inputs"].append(tuple(inp[0].shape)))
            return model
        return wrapped

    def watch_optimizer(phase: str, make: Callable[[nn.Module, Any], torch.optim.Optimizer]
                        ) -> Callable[[nn.Module, Any], torch.optim.Optimizer]:
        def wrapped(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
            opt = make(model, cfg)
            seen["optimizers"].append((phase, model, opt))
            return opt
        return wrapped

    def on_epoch(epoch: int, model: nn.Module, frozen: tuple[nn.Module, ...], plain: Any) -> dict[str, Any]:
        # Read-only: the hook must leave the weights and the RNG as they are.
        seen["epochs"].append({
            "epoch": epoch,
            "has_grad": [all(p.grad is not None for p in _stage_params(model, s)) for s in EXTRACTOR_STAGES],
            "no_grad": [all(p.grad is None for p in _stage_params(model, s)) for s in EXTRACTOR_STAGES],
            "rest_has_grad": all(p.grad is not None for n, p in model.named_parameters()
                                 if not any(_under(n, s) for s in EXTRACTOR_STAGES)),
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()
                      if any(_under(k, s) for s in EXTRACTOR_STAGES)},
            "head_dropout": model.head.drop.p, "training": model.training})
        return {}

    original_finetune = finetune_mod.finetune

    def watched_finetune(*args: Any, **kwargs: Any) -> Any:
        result = original_finetune(*args, **{**kwargs, "on_epoch": on_epoch})
        seen["finetune"].append(result)
        return result

    macro = save_crop_set(tiny_sets["macro"], work / "macro")
    micro = save_crop_set(tiny_sets["micro"], work / "micro")
    image = synth_root / tiny_sets["micro"].meta["frame_path"].iloc[0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transfer_mod, "create_backbone", watch_inputs(transfer_mod.create_backbone))
        mp.setattr(finetune_mod, "create_backbone", watch_inputs(finetune_mod.create_backbone))
        mp.setattr(transfer_mod, "make_optimizer", watch_optimizer("macro", transfer_mod.make_optimizer))
        mp.setattr(finetune_mod, "make_optimizer", watch_optimizer("micro", finetune_mod.make_optimizer))
        mp.setattr(finetune_mod, "finetune", watched_finetune)
        common = ["--profile", "paper", "--device", "cpu", "--threads", THREADS]
        assert main(["train-macro", "--crops", str(macro), "--out", str(work / "transfer"), *common,
                     "--epochs", "1", "--quiet"]) == 0
        assert main(["fit", "--crops", str(micro), "--out", str(work / "model"), "--transfer",
                     str(work / "transfer"), *common, "--epochs", str(EPOCHS)]) == 0
    assert main(["export", "--model", str(work / "model"), "--out", str(work / "bundle"),
                 "--crops", str(micro), "--exporter", "torchscript"]) == 0
    assert main(["predict", "--model", str(work / "bundle"), "--input", str(image),
                 "--out", str(work / "predictions.csv"), "--threads", THREADS]) == 0
    seen.update(work=work, image=image, predictions=pd.read_csv(work / "predictions.csv"),
                bundle=json.loads((work / "bundle" / "bundle.json").read_text()),
                transfer_record=json.loads((work / "transfer" / "transfer.json").read_text()),
                extractor=load_file(work / "transfer" / "feature_extractor.safetensors"),
                macro_best=load_file(work / "transfer" / "model.safetensors"))
    return seen


def test_the_paper_profile_holds_the_papers_settings() -> None:
    prof = get_profile("paper", "cuda")
    for cfg in (prof.macro, prof.micro):
        assert (cfg.arch, cfg.image_size, cfg.l2, cfg.drop_rate, cfg.device) == ("mobilevit_s", SIZE, 0.01, 0.5, "cuda")
        assert (cfg.perturb_p, cfg.perturb_max, cfg.balance) == (0.3, 20, "augment")
    m = prof.macro
    assert (m.optimizer, m.lr, m.momentum, m.batch_size, m.epochs) == ("sgd", 0.01, 0.9, 32, 100)
    f = prof.micro
    assert (f.optimizer, f.lr, f.batch_size) == ("adam", 0.007, 64)
    assert (f.unfreeze_start, f.unfreeze_end, f.transfer_load, f.classifier) == (0.2, 0.6, "blocks", "svm")
    s = prof.search
    assert (s.batch_size, s.lr, s.epochs, s.selection) == ((32, 64), (0.001, 0.007, 0.01), (20, 40), "inner")


def test_the_network_sees_256_pixel_faces(paper_run: dict[str, Any]) -> None:
    assert paper_run["inputs"], "no forward pass was watched"
    assert {shape[1:] for shape in paper_run["inputs"]} == {(1, SIZE, SIZE)}
    assert paper_run["transfer_record"]["config"]["image_size"] == SIZE
    assert paper_run["bundle"]["image_size"] == SIZE and paper_run["bundle"]["arch"] == "mobilevit_s"


def test_the_stem_and_the_mv2_blocks_are_transferred(paper_run: dict[str, Any]) -> None:
    extractor, best = paper_run["extractor"], paper_run["macro_best"]
    prefixes = tuple(p for stage in EXTRACTOR_STAGES for p in stage)
    assert set(extractor) == {k for k in best if _under(k, prefixes)}
    assert not any(k.startswith(("stages.2.1.", "stages.3.1.", "stages.4.1.", "head.")) for k in extractor)
    assert all(torch.equal(extractor[k], best[k]) for k in extractor)  # the best epoch's own tensors
    (result,) = paper_run["finetune"]
    assert sorted(result.loaded_keys) == sorted(extractor)
    # Every stage is frozen (BatchNorm statistics too) through epoch 0: after it, the
    # micro model still holds exactly what was loaded.
    after_first = paper_run["epochs"][0]["state"]
    assert sorted(after_first) == sorted(extractor)
    changed = [k for k in extractor if not torch.equal(after_first[k], extractor[k])]
    assert not changed, changed[:5]


def test_stages_unfreeze_deepest_first_on_the_papers_schedule(paper_run: dict[str, Any]) -> None:
    epochs, extractor = paper_run["epochs"], paper_run["extractor"]
    assert [e["epoch"] for e in epochs] == list(range(EPOCHS))
    for e in epochs:
        trains = [e["epoch"] >= start for start in UNFREEZE_AT]
        assert e["has_grad"] == trains, (e["epoch"], e["has_grad"])
        assert e["no_grad"] == [not t for t in trains], (e["epoch"], e["no_grad"])
        assert e["rest_has_grad"], f"epoch {e['epoch']}: the MobileViT blocks and the head train from the start"
        for i, stage in enumerate(EXTRACTOR_STAGES):
            keys = [k for k in extractor if _under(k, stage)]
            same = all(torch.equal(e["state"][k], extractor[k]) for k in keys)
            # Frozen: bit for bit the transferred tensors; from its first epoch on it moves.
            assert same == (not trains[i]), (e["epoch"], stage)
    (result,) = paper_run["finetune"]
    assert result.curves["frozen_stages"].tolist() == [sum(e < s for s in UNFREEZE_AT) for e in range(EPOCHS)]
    assert all(p.requires_grad for p in result.model.parameters())


def test_l2_and_dropout_are_the_papers(paper_run: dict[str, Any]) -> None:
    phases = [(phase, type(opt).__name__) for phase, _, opt in paper_run["optimizers"]]
    assert phases == [("macro", "SGD"), ("micro", "Adam")]
    for phase, model, opt in paper_run["optimizers"]:
        weights = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
        decays = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
        assert set(decays) == {id(p) for p in model.parameters()}, phase
        # Keras's l2 * sum(w^2) in the loss is weight decay 2 * l2 in the gradient.
        assert {decays[i] for i in weights} == {0.02}, phase
        assert {d for i, d in decays.items() if i not in weights} == {0.0}, phase
        assert model.head.fc.weight is not None and id(model.head.fc.weight) in weights
        lrs = {g["lr"] for g in opt.param_groups}
        assert lrs == ({0.01} if phase == "macro" else {0.007}), phase
        if phase == "macro":
            assert {g["momentum"] for g in opt.param_groups} == {0.9}
    assert {e["head_dropout"] for e in paper_run["epochs"]} == {0.5}
    assert {e["training"] for e in paper_run["epochs"]} == {True}  # dropout acts in train mode only
    assert paper_run["bundle"]["finetune"]["drop_rate"] == 0.5 and paper_run["bundle"]["finetune"]["l2"] == 0.01


def test_the_svm_reads_the_learned_features_and_predict_runs(paper_run: dict[str, Any]) -> None:
    from merlib.inference.bundle import load_bundle

    bundle = paper_run["bundle"]
    assert bundle["classifier"] == "svm" and bundle["svm"]["kind"] == "svc"
    assert load_bundle(paper_run["work"] / "bundle").svm.n_features == FEATURES
    search = bundle["training"]["svm_search"]
    assert search["C"] in (0.1, 1.0, 10.0, 100.0) and search["kernel"] in ("linear", "rbf")
    (row,) = paper_run["predictions"].to_dict("records")
    assert row["status"] in ("ok", "fallback") and row["label"] in LABELS, row
    svm_scores = [row[f"svm_{c}"] for c in LABELS]
    assert row["label"] == LABELS[int(np.argmax(svm_scores))]  # the SVM's answer, not the softmax's


def test_the_paper_books_values_are_parameters_of_their_notebooks() -> None:
    """``make book PROFILE=paper`` passes params/paper/<name>.yaml to notebooks/<name>.ipynb:
    a key the notebook does not declare would be injected and silently change nothing."""
    import papermill
    import yaml

    checkout = Path(__file__).resolve().parents[2]
    files = sorted((checkout / "params" / "paper").glob("*.yaml"))
    assert files, "params/paper holds no values"
    for path in files:
        notebook = checkout / "notebooks" / f"{path.stem}.ipynb"
        assert notebook.is_file(), f"{path.name}: no notebooks/{path.stem}.ipynb"
        declared = set(papermill.inspect_notebook(str(notebook)))
        assert {"profile", "device"} <= declared, f"{notebook.name} takes no profile or device"
        unknown = set(yaml.safe_load(path.read_text())) - declared
        assert not unknown, f"{path.name}: {sorted(unknown)} are not parameters of {notebook.name}"
