import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from merlib.provenance import Provenance, code_version, data_fingerprint, is_simulated


def _tree(root, files):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def test_fingerprint_is_location_independent_and_content_sensitive(tmp_path):
    files = {"A/img1.jpg": b"\x00" * 10, "A/coding.xlsx": b"abc", "B/x.txt": b"3.0"}
    a = _tree(tmp_path / "a", files)
    b = _tree(tmp_path / "b", files)
    assert data_fingerprint(a) == data_fingerprint(b)
    assert len(data_fingerprint(a)) == 12

    (b / "A/coding.xlsx").write_bytes(b"abd")  # same size, other annotation content
    assert data_fingerprint(a) != data_fingerprint(b)
    (b / "A/coding.xlsx").write_bytes(b"abc")
    (b / "A/img2.jpg").write_bytes(b"\x01")  # one more image
    assert data_fingerprint(a) != data_fingerprint(b)


def test_fingerprint_of_missing_root_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        data_fingerprint(tmp_path / "nope")


def test_simulated_roots_are_labelled(tmp_path):
    real = _tree(tmp_path / "real", {"CASME2/a.txt": b"1"})
    sim = _tree(tmp_path / "sim", {"CASME2/a.txt": b"1"})
    (sim / "SYNTHME.json").write_text(json.dumps({"simulated": True, "seed": 7}))
    assert not is_simulated(real) and is_simulated(sim)

    p_real = Provenance.for_data(real, seed=1)
    p_sim = Provenance.for_data(sim, seed=1, n=3)
    assert not p_real.simulated and p_sim.simulated
    assert "SIMULATED (SynthME, seed 7)" in p_sim.caption()
    assert "real" in p_real.caption()
    assert "n=3, seed=1" in p_sim.caption()  # parameters sorted by name
    assert code_version() in p_sim.caption()


def test_stamp_titles_simulated_figures(tmp_path):
    sim = _tree(tmp_path / "sim", {"SYNTHME.json": b'{"seed": 0}'})
    fig, _ = plt.subplots()
    fig.suptitle("Apex frames")
    Provenance.for_data(sim).stamp(fig)
    assert fig._suptitle.get_text() == "SIMULATED DATA — Apex frames"
    texts = [t.get_text() for t in fig.texts]
    assert any("fingerprint" in t for t in texts)
    plt.close(fig)


def test_code_version_names_package_and_commit():
    v = code_version()
    assert v.startswith("merlib 0.1.0")


X86_CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9654 96-Core Processor
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16
processor\t: 1
model name\t: AMD EPYC 9654 96-Core Processor
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 2000.00
Features\t: fp asimd evtstrm aes sve sve2
CPU implementer\t: 0x41
CPU part\t: 0xd4f
"""


def test_cpu_model_and_instruction_sets_from_cpuinfo(tmp_path):
    from merlib.provenance import cpu_flags, cpu_model

    (tmp_path / "x86").write_text(X86_CPUINFO)
    (tmp_path / "arm").write_text(ARM_CPUINFO)
    assert cpu_model(tmp_path / "x86") == "AMD EPYC 9654 96-Core Processor"
    assert cpu_flags(tmp_path / "x86") == ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
    assert cpu_model(tmp_path / "arm") == "ARM implementer 0x41 part 0xd4f"
    assert cpu_flags(tmp_path / "arm") == ["asimd", "sve", "sve2"]
    assert cpu_model(tmp_path / "missing") == "unknown CPU" and cpu_flags(tmp_path / "missing") == []


def test_every_caption_names_the_cpu_and_its_instruction_set(tmp_path):
    import platform

    from merlib.provenance import NOTABLE_FLAGS, cpu_flags, cpu_model

    root = _tree(tmp_path / "real", {"CASME2/a.txt": b"1"})
    for prov in (Provenance.for_data(root, seed=1), Provenance("real", "abc", "merlib 0", {"device": "cpu"})):
        machine = prov.machine
        assert machine.startswith(f"CPU {cpu_model()} ({platform.machine()}; ")
        flags = cpu_flags()
        assert all(f in machine for f in flags) if flags else "none of " + "/".join(NOTABLE_FLAGS) in machine
        assert "GPU" not in machine  # a CPU run names no GPU
        assert f"| Machine: {machine}" in prov.caption() and prov.as_dict()["machine"] == machine
    fig, _ = plt.subplots()
    Provenance.for_data(root).stamp(fig)
    assert any(f"Machine: CPU {cpu_model()}" in t.get_text() for t in fig.texts)
    plt.close(fig)


def test_a_cuda_run_names_the_gpu_and_its_compute_capability(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: SimpleNamespace(name=f"NVIDIA H100 80GB HBM3 #{i}", major=9, minor=0))
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    root = _tree(tmp_path / "real", {"CASME2/a.txt": b"1"})
    caption = Provenance.for_data(root, device="cuda:1", profile="paper").caption()
    assert "; GPU NVIDIA H100 80GB HBM3 #1 (sm_90, CUDA 12.4, cuDNN 90100) | Params:" in caption
    assert "Machine: CPU " in caption  # the CPU still runs the SVM, the bootstrap, the pre-processing
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "cuda asked for, but torch" in Provenance.for_data(root, device="cuda").machine
