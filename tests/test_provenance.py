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
