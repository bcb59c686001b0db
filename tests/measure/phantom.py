"""Phantom wound photos with known geometry: the independent oracle for the measurement tests.

A flat "skin" plane carries the printed sticker (the real SVG from
``capture_api.measure.sticker``, rasterised by resvg, a renderer independent of OpenCV) and a
wound: a polygon of analytically known area. A pinhole camera (focal length of a 26 mm-
equivalent phone lens) looks at the plane from a known distance, tilt, tilt direction and roll;
the plane is projected with ``cv2.warpPerspective`` through the homography ``K [r1 r2 t]``
written here from the pose, then blurred, given sensor noise and JPEG-compressed.

The nurse's tracing is the true outline projected with the same homography, resampled every
few pixels and moved by independent Gaussian noise. Truth (area, head-to-toe length, width,
perimeter) comes from the polygon in millimetres, never from the image.

Plane coordinates: millimetres, origin at the marker's centre, ``+x`` right, ``+y`` to the
head (the sticker's arrow). Image points are in DICOM SCOORD convention (pixel centres at
+0.5), as the product expects.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt
import resvg_py
from PIL import Image

from capture_api.measure.outline import first_self_intersection
from capture_api.measure.sticker import sticker_layout, sticker_svg

Points = npt.NDArray[np.float64]

PHONE_SIZE = (4032, 3024)  # 12 MP, 4:3
PPM = 12  # texture pixels per millimetre
PLANE_HALF = (200, 170)  # the textured plane spans +-200 x +-170 mm
SHAPES = ("ellipse", "convex", "irregular")


@dataclass(frozen=True)
class Pose:
    tilt_deg: float
    azimuth_deg: float
    roll_deg: float
    distance_mm: float
    target_mm: tuple[float, float]


@dataclass(frozen=True)
class Phantom:
    image: npt.NDArray[np.uint8]  # BGR, decoded from ``jpeg``
    jpeg: bytes
    pose: Pose
    focal_px: float
    plane_to_image: npt.NDArray[np.float64]  # mm -> SCOORD px
    shape_mm: Points  # the wound polygon
    outline_px: Points  # its exact projection (SCOORD), densely resampled
    tracing_px: Points  # the noisy tracing
    area_cm2: float
    length_mm: float
    width_mm: float
    perimeter_mm: float


def focal_px(size: tuple[int, int], equivalent_mm: float = 26.0) -> float:
    """Pinhole focal length in pixels for a 35 mm-equivalent lens (diagonal definition)."""
    return equivalent_mm * math.hypot(*size) / math.hypot(36.0, 24.0)


# --- the wound --------------------------------------------------------------------------------


def wound_shape(rng: np.random.Generator, kind: str, area_cm2: float) -> Points:
    """A simple polygon (mm, centred on 0) of exactly ``area_cm2``, of one of ``SHAPES``."""
    if kind == "ellipse":
        t = np.linspace(0, 2 * np.pi, 240, endpoint=False)
        points = np.column_stack([np.cos(t), rng.uniform(0.45, 1.0) * np.sin(t)])
    elif kind == "convex":
        t = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(6, 12))))
        points = np.column_stack([np.cos(t), rng.uniform(0.5, 1.0) * np.sin(t)])
    elif kind == "irregular":
        t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
        r = np.ones_like(t)
        for k in range(2, 7):
            r += rng.uniform(0.0, 0.32 / k) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
        points = np.column_stack([r * np.cos(t), 0.8 * r * np.sin(t)])
    else:
        raise ValueError(kind)
    angle = rng.uniform(0, np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = points @ rotation.T
    points -= points.mean(axis=0)
    return np.asarray(points * math.sqrt(area_cm2 * 100 / shoelace(points)))


def shoelace(points: Points) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def perimeter(points: Points) -> float:
    return float(np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1).sum())


# --- the plane's texture ----------------------------------------------------------------------


def _plane_to_texture() -> npt.NDArray[np.float64]:
    """Plane mm -> texture pixel (OpenCV centres at integers)."""
    half_x, half_y = PLANE_HALF
    return np.array(
        [[PPM, 0, half_x * PPM - 0.5], [0, -PPM, half_y * PPM - 0.5], [0, 0, 1]], dtype=np.float64
    )


@cache
def _skin(seed: int) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    height, width = 2 * PLANE_HALF[1] * PPM, 2 * PLANE_HALF[0] * PPM
    base = np.array([140, 165, 210], dtype=np.float32)  # BGR, light skin
    low = cv2.resize(
        rng.normal(0, 14, (6, 8, 3)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    mid = cv2.resize(
        rng.normal(0, 6, (height // 16, width // 16, 1)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    fine = cv2.resize(
        rng.normal(0, 5, (height // 3, width // 3, 1)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_LINEAR,
    )
    skin = base + low + mid[:, :, None] + fine[:, :, None]
    skin.setflags(write=False)
    return np.asarray(np.clip(skin, 0, 255), dtype=np.uint8)  # cv2 types its results loosely


@cache
def _sticker_pixels(marker_id: int) -> npt.NDArray[np.uint8]:
    png = resvg_py.svg_to_bytes(svg_string=sticker_svg(marker_id), dpi=PPM * 25.4)
    rgb = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB"))[:, :, ::-1]
    paper = 28 + rgb.astype(np.float32) * (236 - 28) / 255  # ink is not black, paper not white
    return np.ascontiguousarray(paper.astype(np.uint8))


def _texture(
    seed: int, shape_mm: Points, marker_id: int, occluder: tuple[float, float, float] | None
) -> npt.NDArray[np.uint8]:
    texture = _skin(seed % 4).copy()
    layout = sticker_layout(marker_id)
    sticker = _sticker_pixels(marker_id)
    half = layout.spec.side_mm / 2
    left_mm = PLANE_HALF[0] - (layout.marker_origin[0] + half)
    top_mm = PLANE_HALF[1] - (layout.marker_origin[1] + half)
    left, top = round(left_mm * PPM), round(top_mm * PPM)
    assert abs(left - left_mm * PPM) < 1e-6 and abs(top - top_mm * PPM) < 1e-6
    texture[top : top + sticker.shape[0], left : left + sticker.shape[1]] = sticker
    _paint_wound(texture, shape_mm, np.random.default_rng(seed + 1))
    if occluder is not None:
        x, y, radius = occluder
        centre = (_plane_to_texture() @ np.array([x, y, 1.0]))[:2]
        cv2.circle(
            texture, tuple(round(float(c)) for c in centre), int(radius * PPM), (120, 150, 200), -1
        )
    return texture


def _paint_wound(
    texture: npt.NDArray[np.uint8], shape_mm: Points, rng: np.random.Generator
) -> None:
    """Anti-aliased wound bed (red, granular) blended into the skin."""
    homogeneous = np.column_stack([shape_mm, np.ones(len(shape_mm))]) @ _plane_to_texture().T
    pixels = homogeneous[:, :2]
    x0, y0 = np.floor(pixels.min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(pixels.max(axis=0)).astype(int) + 4
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    shift = 8
    fixed = np.round((pixels - [x0, y0]) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], 255, lineType=cv2.LINE_AA, shift=shift)
    alpha = mask.astype(np.float32)[:, :, None] / 255
    bed = np.array([55, 45, 165], dtype=np.float32) + rng.normal(0, 14, (*mask.shape, 1)).astype(
        np.float32
    )
    region = texture[y0:y1, x0:x1].astype(np.float32)
    texture[y0:y1, x0:x1] = np.clip(region * (1 - alpha) + bed * alpha, 0, 255).astype(np.uint8)


# --- the camera -------------------------------------------------------------------------------


def camera_homography(pose: Pose, size: tuple[int, int], focal: float) -> npt.NDArray[np.float64]:
    """Plane mm -> image pixel (OpenCV convention) for a pinhole camera at ``pose``."""
    tilt, azimuth, roll = (
        math.radians(a) for a in (pose.tilt_deg, pose.azimuth_deg, pose.roll_deg)
    )
    view = np.array(
        [math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth), math.cos(tilt)]
    )
    centre = np.array([*pose.target_mm, 0.0]) + pose.distance_mm * view
    z = -view
    down = np.array([0.0, -1.0, 0.0])
    y0 = down - np.dot(down, z) * z
    y0 /= np.linalg.norm(y0)
    x0 = np.cross(y0, z)
    x = math.cos(roll) * x0 + math.sin(roll) * y0
    y = -math.sin(roll) * x0 + math.cos(roll) * y0
    rotation = np.array([x, y, z])
    translation = -rotation @ centre
    camera = np.array([[focal, 0, (size[0] - 1) / 2], [0, focal, (size[1] - 1) / 2], [0, 0, 1]])
    return np.asarray(camera @ np.column_stack([rotation[:, 0], rotation[:, 1], translation]))


def project(matrix: npt.NDArray[np.float64], points: Points) -> Points:
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ matrix.T
    return np.asarray(homogeneous[:, :2] / homogeneous[:, 2:])


def _scene_corners(shape_mm: Points, marker_id: int) -> Points:
    layout = sticker_layout(marker_id)
    half = layout.spec.side_mm / 2
    mx, my = layout.marker_origin[0] + half, layout.marker_origin[1] + half
    sticker = np.array(
        [
            [-mx, my],
            [layout.width - mx, my],
            [layout.width - mx, my - layout.height],
            [-mx, my - layout.height],
        ]
    )
    return np.vstack([sticker, shape_mm])


def _fits(
    matrix: npt.NDArray[np.float64], points: Points, size: tuple[int, int], margin: float
) -> bool:
    homogeneous = np.column_stack([points, np.ones(len(points))]) @ matrix.T
    if np.any(homogeneous[:, 2] <= 0):
        return False
    pixels = homogeneous[:, :2] / homogeneous[:, 2:]
    return bool(
        np.all(pixels >= margin)
        and np.all(pixels[:, 0] <= size[0] - margin)
        and np.all(pixels[:, 1] <= size[1] - margin)
    )


# --- the photo --------------------------------------------------------------------------------


def render_phantom(
    seed: int,
    *,
    tilt_deg: float,
    area_cm2: float,
    kind: str = "irregular",
    marker_id: int = 30,
    size: tuple[int, int] = PHONE_SIZE,
    distance_mm: float | None = None,
    distance_range: tuple[float, float] = (220.0, 320.0),
    blur_sigma: float = 1.0,
    noise_sigma: float = 3.0,
    jpeg_quality: int = 90,
    tracing_noise_px: float = 2.0,
    tracing_step_px: float = 4.0,
    occluder: tuple[float, float, float] | None = None,
) -> Phantom:
    """One phantom photo; everything random comes from ``seed``."""
    rng = np.random.default_rng(seed)
    shape = wound_shape(rng, kind, area_cm2)
    radius = float(np.linalg.norm(shape, axis=1).max())
    layout = sticker_layout(marker_id)
    sticker_radius = float(np.linalg.norm(_scene_corners(shape[:0], marker_id), axis=1).max())
    direction = rng.uniform(0, 2 * np.pi)
    centre = (sticker_radius + radius + rng.uniform(4, 12)) * np.array(
        [math.cos(direction), math.sin(direction)]
    )
    shape = shape + centre
    focal = focal_px(size)
    target = tuple(centre / 2 + rng.normal(0, 5, 2))
    distance = distance_mm if distance_mm is not None else rng.uniform(*distance_range)
    pose = Pose(tilt_deg, rng.uniform(0, 360), rng.uniform(-180, 180), distance, target)
    scene = _scene_corners(shape, marker_id)
    while not _fits(camera_homography(pose, size, focal), scene, size, 40):
        pose = Pose(
            pose.tilt_deg, pose.azimuth_deg, pose.roll_deg, pose.distance_mm * 1.08, pose.target_mm
        )
        assert pose.distance_mm < 900, "scene does not fit the photo"
    del layout
    plane_to_cv = camera_homography(pose, size, focal)
    texture = _texture(seed, shape, marker_id, occluder)
    warp = plane_to_cv @ np.linalg.inv(_plane_to_texture())
    image = np.asarray(
        cv2.warpPerspective(
            texture,
            warp,
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(40, 40, 40),
        ),
        dtype=np.uint8,
    )
    image = _camera_effects(image, rng, blur_sigma, noise_sigma)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    assert ok
    jpeg = encoded.tobytes()
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    to_scoord = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]]) @ plane_to_cv
    outline = _resample(project(to_scoord, shape), tracing_step_px)
    tracing = _wobble(outline, rng, tracing_noise_px)
    for _ in range(20):  # a tracing that loops would be refused (tested elsewhere): draw again
        if first_self_intersection(tracing) is None:
            break
        tracing = _wobble(outline, rng, tracing_noise_px)
    extent_y = float(shape[:, 1].max() - shape[:, 1].min())
    extent_x = float(shape[:, 0].max() - shape[:, 0].min())
    return Phantom(
        image=np.asarray(decoded, dtype=np.uint8),
        jpeg=jpeg,
        pose=pose,
        focal_px=focal,
        plane_to_image=to_scoord,
        shape_mm=shape,
        outline_px=outline,
        tracing_px=tracing,
        area_cm2=shoelace(shape) / 100,
        length_mm=extent_y,
        width_mm=extent_x,
        perimeter_mm=perimeter(shape),
    )


def _camera_effects(
    image: npt.NDArray[np.uint8], rng: np.random.Generator, blur_sigma: float, noise_sigma: float
) -> npt.NDArray[np.uint8]:
    if blur_sigma > 0:
        image = np.asarray(cv2.GaussianBlur(image, (0, 0), blur_sigma), dtype=np.uint8)
    if noise_sigma > 0:
        noise = np.empty(image.shape, dtype=np.int16)
        cv2.setRNGSeed(int(rng.integers(0, 2**31)))
        # OpenCV's stubs want arrays for mean and stddev; its InputArray takes plain numbers.
        cv2.randn(noise, 0, noise_sigma)  # type: ignore[call-overload]
        image = (
            cv2.add(image.astype(np.int16), noise, dtype=cv2.CV_16S).clip(0, 255).astype(np.uint8)
        )
    return image


def _wobble(outline: Points, rng: np.random.Generator, sigma: float) -> Points:
    """A hand's tracing: the outline moved across itself by smooth noise of ``sigma`` pixels.

    The offsets are white noise smoothed along the outline (a few samples' correlation, like a
    finger's tremor) and applied along the normal, so the tracing wobbles but never loops.
    """
    if sigma <= 0:
        return outline
    count = len(outline)
    white = rng.normal(0, 1, count)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 1.5) ** 2)
    smooth = np.real(
        np.fft.ifft(np.fft.fft(white) * np.fft.fft(np.roll(np.pad(kernel, (0, count - 13)), -6)))
    )
    smooth *= sigma / smooth.std()
    # normals over +-3 samples: smooth round sharp corners, as a finger's path is
    tangent = np.roll(outline, -3, axis=0) - np.roll(outline, 3, axis=0)
    normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return np.asarray(outline + smooth[:, None] * normal)


def _resample(polygon: Points, step: float) -> Points:
    """The closed polygon with extra points every ``step`` pixels or less along each edge.

    Every vertex is kept, so the resampled outline is the same polygon exactly.
    """
    pieces = []
    for start, end in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        count = max(1, math.ceil(float(np.linalg.norm(end - start)) / step))
        t = np.arange(count)[:, None] / count
        pieces.append(start + t * (end - start))
    return np.vstack(pieces)
