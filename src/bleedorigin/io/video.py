"""Streaming video input and output.

Every reader yields `FrameItem(index, time_s, image)` one frame at a time with RGB uint8 images in
the stored pixel grid of the source (non-square sample aspect ratios are not applied, so labels in
stored pixels stay valid). Files and URLs are decoded with PyAV, cameras with OpenCV, image folders
and single images with OpenCV. Bad input raises `InputError` with a one-line reason.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from bleedorigin import MODEL_SIZE
from bleedorigin.errors import InputError, first_line
from bleedorigin.utils.files import refuse_non_regular
from bleedorigin.utils.threads import threads

log = logging.getLogger(__name__)

# Inputs above this many pixels per frame are refused before any decoding (8K UHD: a frame
# of it is 100 MB in RGB); --max-pixels or $BLEEDORIGIN_MAX_PIXELS change it.
DEFAULT_MAX_PIXELS = 7680 * 4320
_LIMITS: dict[str, int | None] = {"max_pixels": None}  # None: $BLEEDORIGIN_MAX_PIXELS or the default

# Seconds a file or stream may take to open or to deliver the next data before it is given up.
STREAM_TIMEOUT_S = 10.0

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
URL_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frames: int | None  # None when unknown (live sources, some containers)


@dataclass(frozen=True)
class FrameItem:
    index: int
    time_s: float
    image: np.ndarray  # (H, W, 3) RGB uint8


def _is_camera(source: object) -> bool:
    return isinstance(source, int) or (isinstance(source, str) and source.isdigit())


def _is_url(source: object) -> bool:
    return isinstance(source, str) and source.lower().startswith(URL_PREFIXES)


class VideoReader:
    """Iterable of FrameItem; use as a context manager. `info` is known after opening."""

    def __init__(self, source: str | os.PathLike | int):
        self.source = source
        self.info: VideoInfo
        self._first: FrameItem | None = None
        self._frames: Iterator[FrameItem]
        self._closers: list = []
        self.decoded = 0  # frames handed out so far
        if _is_camera(source):
            self._open_camera(int(source))
        elif _is_url(source):
            self._open_av(str(source))
        else:
            path = Path(source)
            if not path.exists():
                raise InputError(f"input not found: {path}")
            if path.is_dir():
                self._open_folder(path)
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                self._open_image(path)
            else:
                self._open_av(str(path))
        # Decode the first frame now so empty or unreadable input fails at open time.
        try:
            self._first = next(self._frames)
        except StopIteration:
            self.close()
            raise InputError(f"no frames could be decoded from {source}") from None
        except InputError:
            self.close()
            raise

    # --- sources ---------------------------------------------------------------------------
    def _open_av(self, name: str) -> None:
        try:
            container = av.open(name, options={"rtsp_transport": "tcp"} if name.startswith("rtsp") else None,
                                timeout=STREAM_TIMEOUT_S)
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot open video {name}: {_reason(e)}") from None
        self._closers.append(container.close)
        if not container.streams.video:
            raise InputError(f"no video stream in {name}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads()  # the decoder shares the budget of the models
        rate = stream.average_rate or stream.guessed_rate or 30
        fps = float(rate) if rate else 30.0
        frames = int(stream.frames) or None
        w, h = stream.codec_context.width, stream.codec_context.height
        if not w or not h:
            raise InputError(f"video stream of {name} has no frame size")
        check_size(name, w, h)
        self.info = VideoInfo(name, w, h, fps, frames)
        self._frames = self._decode_av(container, stream, name)

    def _decode_av(self, container, stream, name: str) -> Iterator[FrameItem]:
        index = 0
        base = None
        try:
            for frame in _frames_to_the_end(container, stream):
                t = float(frame.time) if frame.time is not None else index / self.info.fps
                base = t if base is None else base
                yield FrameItem(index, t - base, frame.to_ndarray(format="rgb24"))
                index += 1
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise InputError(f"video {name} broke at frame {index}: {_reason(e)}") from None

    def _open_camera(self, index: int) -> None:
        # OpenCV logs its own warning for a missing camera; ours is the one-line error below
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            cap = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(previous)
        if not cap.isOpened():
            raise InputError(f"cannot open camera {index}")
        self._closers.append(cap.release)
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        check_size(f"camera {index}", w, h)
        self.info = VideoInfo(f"camera:{index}", w, h, float(fps), None)
        self._frames = self._decode_camera(cap)

    def _decode_camera(self, cap) -> Iterator[FrameItem]:
        index = 0
        t0 = None
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            t0 = ms if t0 is None else t0
            yield FrameItem(index, (ms - t0) / 1000.0 if ms else index / self.info.fps,
                            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1

    def _open_folder(self, folder: Path) -> None:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
        first = _read_image(files[0])
        self.info = VideoInfo(str(folder), first.shape[1], first.shape[0], 30.0, len(files))
        self._frames = self._decode_images(files, first)

    def _open_image(self, path: Path) -> None:
        img = _read_image(path)
        self.info = VideoInfo(str(path), img.shape[1], img.shape[0], 30.0, 1)
        self._frames = iter([FrameItem(0, 0.0, img)])

    def _decode_images(self, files: list[Path], first: np.ndarray) -> Iterator[FrameItem]:
        size = first.shape
        for i, f in enumerate(files):
            img = first if i == 0 else _read_image(f)
            if img.shape != size:
                raise InputError(f"{f.name} is {img.shape[1]}x{img.shape[0]}, the folder's first image is "
                                 f"{size[1]}x{size[0]}")
            yield FrameItem(i, i / self.info.fps, img)

    # --- iteration -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[FrameItem]:
        if self._first is not None:
            log.debug("streaming %s (%s frames announced)", self.info.path, self.info.frames)
            first, self._first = self._first, None
            self.decoded += 1
            yield first
        for item in self._frames:
            self.decoded += 1
            yield item

    @property
    def ended_early(self) -> bool:
        """After reading to the end: True when fewer frames came than the header announced
        (a truncated file or a stream cut off); False when the count is unknown."""
        return self.info.frames is not None and self.decoded < self.info.frames

    def shortfall(self) -> str:
        """One line for a stream that ended early (see `ended_early`)."""
        return (f"{self.info.path} ended after {self.decoded} of the {self.info.frames} frames its "
                "header announces (truncated?)")

    def close(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception:  # closing a broken stream must not hide the real error
                log.debug("error while closing %s", self.source, exc_info=True)
        self._closers = []

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _frames_to_the_end(container, stream) -> Iterator:
    """Decoded frames of `stream`. A packet that fails to decode at the very end of the file is
    where a cut-off file stops (the decoder reports it or not depending on its threads), so the
    frames simply end there (VideoReader.ended_early tells); anywhere else it is an error."""
    packets = container.demux(stream)
    packet = next(packets, None)
    while packet is not None:
        following = next(packets, None)
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            if packet.size == 0 or following is None or following.size == 0:
                log.debug("last packet of %s does not decode: the file ends there", container.name)
                return
            raise
        yield from frames
        packet = following


def _reason(e: BaseException) -> str:
    """Why PyAV gave up, in words: its time-out reads "Immediate exit requested"."""
    if isinstance(e, av.error.ExitError):
        return f"no data for {STREAM_TIMEOUT_S:g} s (timed out)"
    return first_line(e)


def max_pixels() -> int:
    """The input size cap in pixels per frame: set_max_pixels, else $BLEEDORIGIN_MAX_PIXELS,
    else DEFAULT_MAX_PIXELS."""
    if _LIMITS["max_pixels"] is not None:
        return _LIMITS["max_pixels"]
    text = os.environ.get("BLEEDORIGIN_MAX_PIXELS", "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"BLEEDORIGIN_MAX_PIXELS must be a positive whole number, got {text!r}")
    return int(text)


def set_max_pixels(limit: int | None) -> None:
    """Change the input size cap for this process (None: back to the environment / default)."""
    if limit is not None and limit < 1:
        raise InputError(f"--max-pixels must be >= 1, got {limit}")
    _LIMITS["max_pixels"] = limit


def check_size(name: object, width: int, height: int) -> None:
    """InputError for a frame above the input size cap, before anything is decoded."""
    limit = max_pixels()
    if width * height > limit:
        raise InputError(f"{name} is {width}x{height} ({width * height / 1e6:.1f} MP), above the input cap "
                         f"of {limit / 1e6:.1f} MP; raise it with --max-pixels or BLEEDORIGIN_MAX_PIXELS")


def quiet_libraries(verbose: bool) -> None:
    """OpenCV prints its own warnings (to stderr, before ours) for images we then report in one
    line; they are shown only with --verbose."""
    level = cv2.utils.logging.LOG_LEVEL_INFO if verbose else cv2.utils.logging.LOG_LEVEL_SILENT
    cv2.utils.logging.setLogLevel(level)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image file's header, without decoding it."""
    from PIL import Image, UnidentifiedImageError

    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # our cap decides, not Pillow's
    try:
        with Image.open(path) as im:
            return im.size
    except UnidentifiedImageError:
        raise InputError(f"cannot read image {path}: not an image file of a known format") from None
    except OSError as e:
        raise InputError(f"cannot read image {path}: {e.strerror or e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _read_image(path: Path) -> np.ndarray:
    check_size(path, *_image_size(path))
    try:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as e:
        raise InputError(f"cannot read image {path}: {first_line(e)}") from None
    if bgr is None:
        raise InputError(f"cannot read image {path}: damaged or unsupported image data")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def open_video(source: str | os.PathLike | int) -> VideoReader:
    """Open a video file, image folder, image, camera index or stream URL for streaming reads."""
    return VideoReader(source)


def probe_video(source: str | os.PathLike | int) -> VideoInfo:
    with open_video(source) as reader:
        return reader.info


def read_frames(source: str | os.PathLike | int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Frames [start, stop) as one (T, H, W, 3) array; meant for short clips."""
    out = []
    with open_video(source) as reader:
        for item in reader:
            if stop is not None and item.index >= stop:
                break
            if item.index >= start:
                out.append(item.image)
    if not out:
        raise InputError(f"no frames in [{start}, {stop}) of {source}")
    return np.stack(out)


def _decode_all(path: Path) -> np.ndarray:
    try:
        with av.open(str(path)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"cannot read video {path}: {exc}") from None
    if not frames:
        raise InputError(f"no frames in {path}")
    return np.stack(frames)


def load_clip_frames(folder: Path) -> np.ndarray:
    """frames.npz (lossless) when present, else video.mp4."""
    npz = folder / "frames.npz"
    if npz.is_file():
        with np.load(npz) as z:
            return z["frames"]
    if (folder / "video.mp4").is_file():
        return _decode_all(folder / "video.mp4")
    raise InputError(f"no frames.npz or video.mp4 in {folder}")


class VideoWriter:
    """H.264 mp4 writer (mpeg4 when libx264 is missing) that only appears at `path` on a clean close.

    Odd frame sizes are padded by one edge pixel because yuv420p needs even sizes.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], crf: int = 20):
        self.path = Path(path)
        refuse_non_regular(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        refuse_non_regular(self.tmp)
        self.size = (int(size[0]), int(size[1]))
        self._even = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
        self._container = av.open(str(self.tmp), "w", format="mp4")
        rate = max(1, round(float(fps) or 30))
        try:
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        except (av.error.FFmpegError, ValueError, av.codec.codec.UnknownCodecError):
            log.warning("libx264 not available, writing mpeg4")
            self._stream = self._container.add_stream("mpeg4", rate=rate)
        self._stream.width, self._stream.height = self._even
        self._stream.pix_fmt = "yuv420p"
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[:2] != (self.size[1], self.size[0]):
            raise InputError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, writer expects {self.size[0]}x{self.size[1]}")
        if self._even != self.size:
            rgb = cv2.copyMakeBorder(rgb, 0, self._even[1] - self.size[1], 0, self._even[0] - self.size[0],
                                     cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush and move the file into place."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        refuse_non_regular(self.path)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:
                log.debug("closing aborted writer failed", exc_info=True)
            self._container = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class FrameMapper:
    """Resize frames to the model resolution and map points both ways.

    Pixel centres sit at integer coordinates, so a point maps as x' = (x + 0.5) * s - 0.5; `to_input`
    is the exact inverse of `to_model`.
    """

    def __init__(self, in_size: tuple[int, int], model_size: tuple[int, int] = MODEL_SIZE):
        self.in_size = (int(in_size[0]), int(in_size[1]))
        self.model_size = (int(model_size[0]), int(model_size[1]))
        self.scale = np.array([self.model_size[0] / self.in_size[0], self.model_size[1] / self.in_size[1]])

    def resize(self, image: np.ndarray) -> np.ndarray:
        if image.shape[1::-1] == self.model_size:
            return image
        shrinking = image.shape[1] > self.model_size[0]
        return cv2.resize(image, self.model_size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

    def to_model(self, xy) -> np.ndarray:
        return (np.asarray(xy, dtype=np.float64) + 0.5) * self.scale - 0.5

    def to_input(self, xy) -> np.ndarray:
        return (np.asarray(xy, dtype=np.float64) + 0.5) / self.scale - 0.5
