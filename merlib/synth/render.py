"""Per-dataset cameras, and rendering one clip of an identity through one.

A clip is rendered frame by frame from the identity's template image (:mod:`.morph`):
the expression's dense displacement field is computed once per clip and scaled by the
frame's intensity; it is composed with the clip's camera transform (scale to the
dataset's face size, in-plane roll of a few degrees, a sub-pixel translation and a
slow drift), so **every** frame, neutral ones included, is resampled the same way and
no interpolation artefact marks the expressive frames. The head is composited on the
dataset's plain background; then lighting (gain, left-right gradient, flicker), optional
blur (lower effective resolution), grey conversion and sensor noise (:func:`sensor_noise`).

Coordinates: ``(x, y)`` pixels, origin at the top-left pixel centre. "Template" pixels
are those of the identity image; "frame" pixels those of the camera.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from merlib.synth.morph import Identity
from merlib.synth.warp import ThinPlateSpline, border_anchors, dense_field
from merlib.faces.landmarks import LEFT_EYE, RIGHT_EYE


@dataclass(frozen=True)
class Camera:
    """How one dataset films its subjects.

    Attributes
    ----------
    width, height : int
        Frame size, pixels.
    colour : bool
        BGR frames if True, else single-channel grey.
    iod_px : float
        Mean inter-ocular distance of the face in the frame, pixels.
    eye_pos : (float, float)
        Mean position of the eyes' midpoint, fractions of width and height.
    background : (int, int, int)
        Plain backdrop colour, BGR.
    noise_sigma : float
        Sensor noise standard deviation, grey levels.
    blur_sigma : float
        Gaussian blur, pixels (0: none): a lower effective resolution than the frame size.
    flicker : float
        Standard deviation of the per-frame gain (high-speed cameras under mains light).
    frames : (int, int)
        Inclusive range of the clip length.
    max_roll_deg : float
        In-plane head rotation is drawn from ``+-max_roll_deg``.
    note : str
        How this differs from the real dataset.
    """

    width: int
    height: int
    colour: bool
    iod_px: float
    eye_pos: tuple[float, float]
    background: tuple[int, int, int]
    noise_sigma: float
    blur_sigma: float
    flicker: float
    frames: tuple[int, int]
    max_roll_deg: float = 5.0
    note: str = ""


CAMERAS: dict[str, Camera] = {
    "casme2": Camera(640, 480, True, 92.0, (0.5, 0.42), (205, 210, 212), 2.0, 0.0, 0.004,
                     (24, 36), note="640x480 colour as the raw release; clips shorter than "
                     "200 fps recordings (24-36 frames)"),
    "samm": Camera(960, 540, False, 130.0, (0.5, 0.40), (150, 150, 150), 1.5, 0.0, 0.002,
                   (14, 20), note="grey; 960x540 instead of 2040x1088, face IOD ~130 px"),
    "smic": Camera(640, 480, True, 62.0, (0.5, 0.42), (70, 78, 85), 3.0, 1.0, 0.004,
                   (7, 9), note="HS 640x480 colour; smaller, blurred face (lower "
                   "effective resolution)"),
    "ckplus": Camera(640, 490, False, 100.0, (0.5, 0.42), (165, 165, 165), 2.0, 0.0, 0.0,
                     (10, 16), note="640x490 grey"),
    "oulu": Camera(320, 240, True, 50.0, (0.5, 0.40), (60, 62, 64), 2.5, 0.0, 0.0,
                   (9, 14), note="VL_Strong 320x240 colour"),
    "jaffe": Camera(256, 256, False, 58.0, (0.5, 0.40), (185, 185, 185), 1.5, 0.0, 0.0,
                    (1, 1), note="256x256 grey stills"),
    "mug": Camera(448, 448, True, 78.0, (0.5, 0.40), (190, 175, 160), 2.0, 0.0, 0.0,
                  (15, 21), note="colour; 448x448 instead of 896x896"),
}


@dataclass(frozen=True)
class Shot:
    """The per-clip random camera state.

    Attributes
    ----------
    scale : float
        Frame pixels per template pixel.
    roll_deg : float
        In-plane rotation of the head, degrees (positive: counter-clockwise on screen).
    eyes : (float, float)
        Eye midpoint in the frame, pixels.
    drift : ndarray of shape (n_frames, 2), float64
        Per-frame head translation, template pixels.
    gain : float
    gradient : (float, float)
        Relative illumination slope across the frame, ``(x, y)``.
    flicker : ndarray of shape (n_frames,), float64
        Per-frame relative gain change.
    background : ndarray of shape (3,), float64
        Backdrop colour, BGR.
    """

    scale: float
    roll_deg: float
    eyes: tuple[float, float]
    drift: np.ndarray
    gain: float
    gradient: tuple[float, float]
    flicker: np.ndarray
    background: np.ndarray


def sample_shot(camera: Camera, identity: Identity, n_frames: int,
                rng: np.random.Generator) -> Shot:
    """Draw a clip's camera state: face size +-6 %, roll, position, drift, lighting."""
    scale = camera.iod_px / identity.iod * float(rng.uniform(0.94, 1.06))
    roll = float(rng.uniform(-camera.max_roll_deg, camera.max_roll_deg))
    jitter = 0.08 * camera.iod_px
    eyes = (camera.eye_pos[0] * (camera.width - 1) + float(rng.uniform(-jitter, jitter)),
            camera.eye_pos[1] * (camera.height - 1) + float(rng.uniform(-jitter, jitter)))
    # A slow random walk of the head: ~0.1 template px per frame.
    steps = rng.normal(0.0, 0.1, size=(n_frames, 2))
    drift = np.cumsum(steps, axis=0) - steps[0]
    gain = float(rng.uniform(0.9, 1.1))
    gradient = (float(rng.uniform(-0.12, 0.12)), float(rng.uniform(-0.06, 0.06)))
    flicker = rng.normal(0.0, camera.flicker, size=n_frames) if camera.flicker else np.zeros(n_frames)
    # Same hue as the dataset's backdrop, brighter or darker, with a faint tint.
    background = (np.asarray(camera.background, np.float64) * rng.uniform(0.88, 1.12)
                  * rng.uniform(0.97, 1.03, size=3))
    return Shot(scale, roll, eyes, drift, gain, gradient, flicker, background)


#: Standard deviation of the sum of four uniform bytes (0..255 each).
_IRWIN_HALL_SD = float(np.sqrt(4 * (256**2 - 1) / 12.0))


def sensor_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance, nearly Gaussian noise, float32 of ``shape``.

    The sum of four uniform random bytes (Irwin-Hall), standardised: its tails end at
    3.5 sd, which sensor noise does not miss, and it is ~4x cheaper than numpy's normal
    sampler, the largest single cost of a frame otherwise.
    """
    size = int(np.prod(shape))
    raw = np.frombuffer(rng.bytes(4 * size), dtype=np.uint8).reshape(4, size)
    total = raw.sum(axis=0, dtype=np.uint16).astype(np.float32)
    total -= np.float32(2 * 255)
    total *= np.float32(1.0 / _IRWIN_HALL_SD)
    return total.reshape(shape)


def frame_to_template(identity: Identity, shot: Shot, points: np.ndarray) -> np.ndarray:
    """Map frame points (m, 2) to template points (m, 2): the inverse camera similarity."""
    eyes_t = 0.5 * (identity.landmarks[LEFT_EYE].mean(0) + identity.landmarks[RIGHT_EYE].mean(0))
    a = np.deg2rad(shot.roll_deg)
    # Frame = scale * R(-a) (template - eyes_t) + eyes_f, with y down: a positive roll
    # turns the head counter-clockwise on screen. Inverse: R(a) (frame - eyes_f) / scale.
    c, s = np.cos(a), np.sin(a)
    rot = np.array([[c, -s], [s, c]])
    d = (np.asarray(points, np.float64) - np.asarray(shot.eyes)) / shot.scale
    return d @ rot.T + eyes_t.astype(np.float64)


def template_to_frame(identity: Identity, shot: Shot, points: np.ndarray) -> np.ndarray:
    """Map template points (m, 2) to frame points (m, 2) (before drift)."""
    eyes_t = 0.5 * (identity.landmarks[LEFT_EYE].mean(0) + identity.landmarks[RIGHT_EYE].mean(0))
    a = np.deg2rad(shot.roll_deg)
    c, s = np.cos(a), np.sin(a)
    rot_inv = np.array([[c, s], [-s, c]])
    d = np.asarray(points, np.float64) - eyes_t.astype(np.float64)
    return shot.scale * (d @ rot_inv.T) + np.asarray(shot.eyes)


@dataclass(frozen=True)
class Nuisance:
    """What a real recording adds to a clip besides the expression.

    Attributes
    ----------
    shift : ndarray of shape (n_frames, 2), float64
        Extra rigid head translation per frame, template pixels (a random walk: the
        subject shifts in the chair), added to the camera's slow drift.
    roll_deg : ndarray of shape (n_frames,), float64
        Extra in-plane head rotation per frame about the eyes' midpoint, degrees.
    blink : ndarray of shape (n_frames,), float64, or None
        Eyelid closure per frame, 0 (open) to 1 (closed); None: no blink.
    gain : ndarray of shape (n_frames,), float64, or None
        Extra relative brightness change per frame (lighting flicker); None: none.
    """

    shift: np.ndarray
    roll_deg: np.ndarray
    blink: np.ndarray | None = None
    gain: np.ndarray | None = None


def sample_nuisance(n_frames: int, iod_px: float, head_motion_iod: float, blink_rate: float,
                    rng: np.random.Generator, flicker: float = 0.0) -> Nuisance | None:
    """Draw a clip's nuisances; None when there are none to draw.

    Parameters
    ----------
    n_frames : int
    iod_px : float
        The identity's inter-ocular distance, template pixels.
    head_motion_iod : float
        Standard deviation of the head's displacement over the whole clip, IOD units
        (a random walk whose end has this spread), and the same number times 20 as its
        rotation over the clip in degrees (0.02 IOD: ~0.4 degree).
    blink_rate : float
        Probability that the clip holds one blink (closing and opening over about a
        quarter of the clip, at a random time).
    rng : numpy Generator
        The clip's own nuisance stream (not the rendering's, so that a root without
        nuisances renders the same bytes as before they existed).
    flicker : float, default=0.0
        Standard deviation of an extra brightness gain drawn for every frame: the
        flicker of lights filmed at high frame rates (drawn last, so that the other
        nuisances of a clip stay as they were without it).
    """
    if head_motion_iod <= 0 and blink_rate <= 0 and flicker <= 0:
        return None
    step = head_motion_iod / np.sqrt(max(n_frames - 1, 1))
    steps = rng.normal(0.0, step * iod_px, size=(n_frames, 2))
    shift = np.cumsum(steps, axis=0) - steps[0]
    turns = rng.normal(0.0, 20.0 * step, size=n_frames)
    roll = np.cumsum(turns) - turns[0]
    blink = None
    if blink_rate > 0 and rng.random() < blink_rate and n_frames >= 3:
        centre = float(rng.uniform(0.0, 1.0)) * (n_frames - 1)
        half = max(1.0, 0.125 * n_frames)
        x = np.clip(1.0 - np.abs(np.arange(n_frames) - centre) / half, 0.0, 1.0)
        blink = 0.5 - 0.5 * np.cos(np.pi * x)
    gain = rng.normal(0.0, flicker, size=n_frames) if flicker > 0 else None
    return Nuisance(shift, roll, blink, gain)


def blink_displacement(landmarks: np.ndarray) -> np.ndarray:
    """Landmark displacement of closed eyes (68, 2), template pixels: the upper lids
    (37, 38, 43, 44) come down onto the lower lids (41, 40, 47, 46)."""
    disp = np.zeros((68, 2), np.float64)
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        disp[upper] = 0.9 * (landmarks[lower] - landmarks[upper])
    return disp


def expression_tps(identity: Identity, displacement_px: np.ndarray) -> ThinPlateSpline:
    """TPS of the apex displacement (template px) at the landmarks, zero far away."""
    h, w = identity.image.shape[:2]
    anchors = border_anchors(w, h, per_side=5, margin=0.1 * max(w, h))
    ctrl = np.vstack([identity.landmarks.astype(np.float64), anchors])
    vals = np.vstack([displacement_px, np.zeros_like(anchors)])
    return ThinPlateSpline.fit(ctrl, vals, scale=max(w, h) / 4.0)


def render_clip(identity: Identity, camera: Camera, displacement_iod: np.ndarray,
                intensities: np.ndarray, rng: np.random.Generator,
                shading: np.ndarray | None = None,
                nuisance: Nuisance | None = None) -> list[np.ndarray]:
    """Render every frame of one clip.

    Parameters
    ----------
    identity : Identity
    camera : Camera
    displacement_iod : ndarray of shape (68, 2)
        Apex landmark displacement, IOD units (:class:`merlib.synth.au.Expression`).
    intensities : ndarray of shape (n_frames,)
        Expression intensity per frame, 0 (neutral) to 1 (apex).
    rng : numpy Generator
        Draws the shot and the noise; the same state gives the same frames.
    shading : ndarray of shape (H, W), float32, optional
        The skin's appearance change at the apex, template pixels
        (:func:`merlib.synth.appearance.shading_map`): each frame's template colour is
        multiplied by ``1 + intensity * shading`` before the warp, so creases move with
        the skin. None: the warp alone.
    nuisance : Nuisance, optional
        Head motion, a blink and lighting flicker (:func:`sample_nuisance`); None: none.

    Returns
    -------
    list of ndarray
        ``n_frames`` uint8 images, (height, width, 3) BGR or (height, width) grey.
    """
    n = len(intensities)
    shot = sample_shot(camera, identity, n, rng)
    w, h = camera.width, camera.height
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    base = frame_to_template(identity, shot, np.stack([xs.ravel(), ys.ravel()], 1))
    base = base.reshape(h, w, 2).astype(np.float32)
    disp = np.asarray(displacement_iod, np.float64) * identity.iod
    if np.any(disp):
        tps = expression_tps(identity, disp)
        # Backward map to first order: the output at q shows the input at q - u(q).
        field = dense_field(lambda p: tps(frame_to_template(identity, shot, p)), w, h)
    else:
        field = np.zeros((h, w, 2), np.float32)
    blink_x = blink_y = rot_x = rot_y = None
    if nuisance is not None:
        if nuisance.blink is not None:
            btps = expression_tps(identity, blink_displacement(identity.landmarks.astype(np.float64)))
            bfield = dense_field(lambda p: btps(frame_to_template(identity, shot, p)), w, h)
            blink_x, blink_y = np.ascontiguousarray(bfield[..., 0]), np.ascontiguousarray(bfield[..., 1])
        # A small rotation about the eyes' midpoint (template px), per radian.
        eyes_t = 0.5 * (identity.landmarks[LEFT_EYE].mean(0) + identity.landmarks[RIGHT_EYE].mean(0))
        rot_x = np.ascontiguousarray(-(base[..., 1] - np.float32(eyes_t[1])))
        rot_y = np.ascontiguousarray(base[..., 0] - np.float32(eyes_t[0]))
    # Premultiplied colour + opacity: one remap per frame resamples both consistently.
    alpha = identity.mask[..., None]
    rgba = np.dstack([identity.image.astype(np.float32) * alpha, identity.mask])
    light = (1.0 + shot.gradient[0] * (xs / (w - 1) - 0.5)
             + shot.gradient[1] * (ys / (h - 1) - 0.5)).astype(np.float32)
    shade = (1.0 + 0.06 * (ys / (h - 1) - 0.5)) * light
    backdrop = [(shade * c).astype(np.float32) for c in shot.background]  # lit, per channel
    base_x, base_y = np.ascontiguousarray(base[..., 0]), np.ascontiguousarray(base[..., 1])
    field_x, field_y = np.ascontiguousarray(field[..., 0]), np.ascontiguousarray(field[..., 1])
    frames = []
    for i in range(n):
        t = float(intensities[i])
        source = rgba
        if shading is not None and t > 0:
            source = rgba.copy()
            source[..., :3] *= (1.0 + t * shading)[..., None]
        mx = cv2.scaleAdd(field_x, -t, base_x)
        my = cv2.scaleAdd(field_y, -t, base_y)
        mx += np.float32(shot.drift[i, 0])
        my += np.float32(shot.drift[i, 1])
        if nuisance is not None:
            mx += np.float32(nuisance.shift[i, 0])
            my += np.float32(nuisance.shift[i, 1])
            a = np.float32(np.deg2rad(nuisance.roll_deg[i]))
            if a:
                mx = cv2.scaleAdd(rot_x, float(a), mx)
                my = cv2.scaleAdd(rot_y, float(a), my)
            if blink_x is not None and nuisance.blink[i] > 0:
                mx = cv2.scaleAdd(blink_x, -float(nuisance.blink[i]), mx)
                my = cv2.scaleAdd(blink_y, -float(nuisance.blink[i]), my)
        # Bilinear: no overshoot, so the opacity stays within [0, 1].
        warped = cv2.remap(source, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=(0.0, 0.0, 0.0, 0.0))
        b, g, r, a = cv2.split(warped)
        clear = cv2.subtract(1.0, a)
        # Lit head over the lit backdrop, channel by channel (cv2: no numpy temporaries).
        img = cv2.merge([cv2.add(cv2.multiply(c, light), cv2.multiply(bg, clear))
                         for c, bg in zip((b, g, r), backdrop)])
        extra = 1.0 if nuisance is None or nuisance.gain is None else 1.0 + float(nuisance.gain[i])
        img *= np.float32(shot.gain * (1.0 + shot.flicker[i]) * extra)
        if not camera.colour:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        if camera.blur_sigma > 0:
            img = cv2.GaussianBlur(img, (0, 0), camera.blur_sigma)
        img = cv2.scaleAdd(sensor_noise(img.shape, rng), float(camera.noise_sigma), img)
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return frames
