"""Calibration and evaluation data: .npz files, image folders, or the built-in digits set."""

from __future__ import annotations

import logging
import math
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from edgecomp.errors import InputError
from edgecomp.hashing import array_sha256
from edgecomp.model.untrusted import open_regular, size_text

if TYPE_CHECKING:
    from edgecomp.model.signature import InputSpec

log = logging.getLogger(__name__)

DEFAULT_CALIB_SIZE = 256
# Data is decoded into memory: one .npz file's arrays, or one image folder's pixels as
# float32, may take this much; beyond it the host would run out of memory. Inputs edgecomp
# makes itself (`generated`) are bounded the same way, before they are allocated.
MAX_DATA_BYTES = 4 * 2**30
# An image file is read whole before decoding; PIL's decompression-bomb guard bounds the
# pixels it decodes to.
MAX_IMAGE_FILE_BYTES = 256 * 2**20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass(frozen=True)
class Dataset:
    """Model inputs by name (sample axis first), with optional integer labels `y`.

    A single-input set names its array `x` (the shorthand) until it is bound to a model;
    `bind` renames and reorders the arrays to the model's own input names.
    """

    arrays: Mapping[str, np.ndarray]
    y: np.ndarray | None
    source: str
    sha256: str

    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.arrays)

    @property
    def x(self) -> np.ndarray:
        """The only input array; data with several inputs have no single `x`."""
        if len(self.arrays) != 1:
            raise InputError(f"{self.source} holds several inputs ({', '.join(self.arrays)}); "
                             "this step works on models with one input.")
        return next(iter(self.arrays.values()))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    def take(self, count: int, *, seed: int = 0) -> "Dataset":
        """A reproducible subset of `count` samples (all of them when there are fewer)."""
        if count >= len(self):
            return self
        order = np.random.default_rng(seed).permutation(len(self))[:count]
        order.sort()
        return make_dataset({k: v[order] for k, v in self.arrays.items()},
                            None if self.y is None else self.y[order],
                            source=f"{self.source}[{count} of {len(self)}]")


def make_dataset(x: np.ndarray | Mapping[str, np.ndarray], y: np.ndarray | None, *,
                 source: str) -> Dataset:
    """Build a Dataset from one array (`x`) or arrays by input name, checking that they line up.

    Float inputs are kept as float32; integer and bool inputs (token ids, masks, a sample
    rate) keep their dtype.
    """
    arrays = {"x": x} if isinstance(x, np.ndarray) else dict(x)
    if not arrays:
        raise InputError(f"{source}: no input arrays.")
    count = None
    for name, array in list(arrays.items()):
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(np.float32, copy=False)
            _refuse_non_finite(array, name, source=source)
        elif array.dtype.kind not in "iub":
            raise InputError(f"{source}: input {name!r} holds {array.dtype} values; inputs "
                             "must be numbers or booleans.")
        if array.ndim < 1 or array.shape[0] == 0:
            raise InputError(f"{source}: {name!r} must hold at least one sample with the "
                             f"sample axis first; got shape {tuple(array.shape)}.")
        if count is not None and array.shape[0] != count:
            raise InputError(f"{source}: every input needs the same number of samples; "
                             f"{name!r} has {array.shape[0]}, the others {count}.")
        count = array.shape[0]
        arrays[name] = np.ascontiguousarray(array)
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != count:
            raise InputError(f"{source}: 'y' must be one integer label per sample "
                             f"({count}); got shape {tuple(y.shape)}.")
        if not np.issubdtype(y.dtype, np.integer):
            raise InputError(f"{source}: 'y' must hold integer class labels; got {y.dtype}.")
        y = y.astype(np.int64)
    return Dataset(arrays=arrays, y=y, source=source, sha256=dataset_sha256(arrays, y))


def _refuse_non_finite(array: np.ndarray, name: str, *, source: str) -> None:
    """NaN or infinity in an input poisons calibration ranges and every comparison made
    with the float model, so data holding any is refused."""
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        raise InputError(f"{source}: input {name!r} holds {bad} non-finite values (NaN or "
                         f"infinity, or beyond float32) of {array.size}; clean the data "
                         "before calibrating or evaluating with it.")


def dataset_sha256(arrays: Mapping[str, np.ndarray], y: np.ndarray | None) -> str:
    """The data's identity: a single `x` hashes as before; named inputs hash with their names."""
    if list(arrays) == ["x"]:
        return array_sha256(arrays["x"], y)
    parts = []
    for name, array in arrays.items():
        parts += [np.frombuffer(name.encode(), dtype=np.uint8), array]
    return array_sha256(*parts, y)


def load_npz(path: Path) -> Dataset:
    """Load an .npz file: `x` (one input) or one array per input name, plus optional `y`."""
    arrays = read_npz(path)
    y = arrays.pop("y", None)
    names = list(arrays)
    if "x" in names and len(names) > 1:
        raise InputError(f"{path}: holds 'x' and other arrays ({', '.join(names)}); "
                         "use 'x' for a one-input model, or one array per input "
                         "name without 'x'.")
    if not names:
        raise InputError(f"{path}: an .npz data file needs 'x' or one array per model "
                         "input (found none); save it with numpy.savez(path, x=inputs,"
                         " y=labels).")
    return make_dataset(arrays, y, source=str(path))


def read_npz(path: Path, *, max_bytes: int = MAX_DATA_BYTES) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read only when it is a regular file whose arrays,
    as their headers declare them, take at most `max_bytes` in memory.

    The headers are read with numpy's own .npy format reader before any array is
    allocated, so a header claiming 10^12 elements is refused, not attempted.
    """
    try:
        # No cap on the file: np.load reads members lazily, and their headers are checked.
        with open_regular(path, what="data file", max_bytes=None) as handle:
            if not zipfile.is_zipfile(handle):  # np.load would read a bare .npy whole
                raise InputError(f"{path}: not an .npz file (a zip of .npy arrays); save "
                                 "it with numpy.savez(path, x=inputs, y=labels).")
            handle.seek(0)
            with np.load(handle, allow_pickle=False) as archive:
                sizes = {name: _npy_bytes(archive, name) for name in archive.files}
                total = sum(sizes.values())
                if total > max_bytes:
                    largest = max(sizes, key=sizes.get)
                    raise InputError(f"{path}: its arrays take {size_text(total)} "
                                     f"({largest!r} {size_text(sizes[largest])}), more than "
                                     f"edgecomp loads ({size_text(max_bytes)}); use fewer "
                                     "samples.")
                return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc}).") from exc


def _npy_bytes(archive, name: str) -> int:
    """The bytes array `name` of an open .npz takes once loaded, from its .npy header."""
    from numpy.lib import format as npy

    member = f"{name}.npy" if f"{name}.npy" in archive.zip.namelist() else name
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    with archive.zip.open(member) as stream:
        version = npy.read_magic(stream)  # ValueError for a member that is not an array
        if version not in readers:
            raise ValueError(f"array {name!r} uses .npy format {version[0]}.{version[1]}, "
                             "which edgecomp does not read")
        shape, _, dtype = readers[version](stream)
    return math.prod(shape) * dtype.itemsize


def load_image_folder(path: Path, *, size: tuple[int, int] | None = None,
                      mean: tuple[float, ...] = (0.0,), std: tuple[float, ...] = (1.0,),
                      grayscale: bool = False) -> Dataset:
    """Load images from `path/<class>/<image>`; class labels follow sorted folder names.

    Pixels are scaled to [0, 1], then normalized with `mean` and `std`, and laid out NCHW.
    """
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if not classes:
        raise InputError(f"{path}: an image folder needs one sub-folder per class.")
    images, labels, total = [], [], 0
    for label, name in enumerate(classes):
        for file in sorted((path / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            array = read_image(file, size=size, grayscale=grayscale)
            total += array.nbytes
            if total > MAX_DATA_BYTES:
                raise InputError(f"{path}: its images take more than edgecomp loads "
                                 f"({size_text(MAX_DATA_BYTES)} as float32); use fewer "
                                 "images or a smaller --image-size.")
            images.append(array)
            labels.append(label)
    if not images:
        raise InputError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders.")
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise InputError(f"{path}: images differ in size ({sorted(shapes)[:3]}...); "
                         "pass --image-size HxW to resize them.")
    x = np.stack(images)
    channels = x.shape[1]
    mean_a = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    std_a = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    if mean_a.shape[0] not in (1, channels) or std_a.shape[0] not in (1, channels):
        raise InputError(f"--mean/--std need 1 or {channels} values for {path}.")
    if not (np.all(np.isfinite(mean_a)) and np.all(np.isfinite(std_a)) and np.all(std_a > 0)):
        raise InputError(f"--mean must be finite and --std finite and above 0 for {path}.")
    x = (x - mean_a) / std_a
    return make_dataset(x, np.asarray(labels, dtype=np.int64), source=str(path))


def read_image(file: Path, *, size: tuple[int, int] | None = None,
               grayscale: bool = False) -> np.ndarray:
    """One image file as float32 CHW in [0, 1], read only when it is a regular file that
    PIL's decompression-bomb guard lets through."""
    from PIL import Image, UnidentifiedImageError

    with open_regular(file, what="image", max_bytes=MAX_IMAGE_FILE_BYTES) as handle:
        try:
            with warnings.catch_warnings():
                # PIL warns between its limit and twice it and raises beyond; both refuse.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(handle) as image:
                    image = image.convert("L" if grayscale else "RGB")
                    if size is not None:
                        image = image.resize((size[1], size[0]), Image.BILINEAR)
                    array = np.asarray(image, dtype=np.float32) / 255.0
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(f"{file}: too many pixels to decode safely (PIL's limit is "
                             f"{Image.MAX_IMAGE_PIXELS} pixels); shrink the image.") from exc
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise InputError(f"{file}: not a readable image ({exc}).") from exc
    return array[None] if grayscale else array.transpose(2, 0, 1)


def demo_digits(split: str = "all") -> Dataset:
    """scikit-learn's 1,797 real 8x8 handwritten digits, as (N, 1, 8, 8) in [0, 1].

    `split` is "train" (first 80 % of a fixed shuffle), "val" (the rest) or "all".
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(1234).permutation(len(x))
    cut = int(len(x) * 0.8)
    chosen = {"train": order[:cut], "val": order[cut:], "all": order}.get(split)
    if chosen is None:
        raise InputError(f"unknown digits split {split!r}; use train, val or all.")
    return make_dataset(x[chosen], y[chosen], source=f"sklearn-digits:{split}")


def load_data(spec: str, **image_options) -> Dataset:
    """Load a dataset from a path (.npz or image folder) or `demo` (the digits set)."""
    if spec in ("demo", "digits"):
        return demo_digits("val")
    if spec.startswith("digits:"):
        return demo_digits(spec.split(":", 1)[1])
    path = Path(spec)
    if not path.exists():
        raise InputError(f"data {spec!r} does not exist; give an .npz file, an image folder, "
                         "or 'demo'.")
    if path.is_dir():
        return load_image_folder(path, **image_options)
    if path.suffix == ".npz":
        return load_npz(path)
    raise InputError(f"{path}: unknown data format; use an .npz file (x, optional y) "
                     "or a folder of images with one sub-folder per class.")


def timing_data(inputs, *, values: Mapping[str, float] | None = None, seed: int = 0
                ) -> Dataset:
    """One sample to time a model on when no data is given, in the shapes of `inputs`:
    float inputs uniform in [0, 1), integer and bool inputs zeros (as the agent makes
    them when it is given none), or the constant `values` names for an input."""
    values = dict(values or {})
    unknown = sorted(set(values) - {spec.name for spec in inputs})
    if unknown:
        raise InputError(f"--input-value {unknown[0]}: the model has no input named "
                         f"{unknown[0]!r}; its inputs are "
                         f"{', '.join(spec.name for spec in inputs)}.")
    for spec in inputs:
        generated(spec, what="the timing sample")
    rng = np.random.default_rng(seed)
    arrays = {}
    for spec in inputs:
        shape = (1, *spec.sample_shape)
        dtype = np.dtype(spec.dtype)
        if spec.name in values:
            value = values[spec.name]
            if dtype.kind in "iub" and value != round(value):
                raise InputError(f"--input-value {spec.name}={value:g}: {spec.name!r} takes "
                                 f"{spec.dtype}, so give a whole number.")
            arrays[spec.name] = np.full(shape, value, dtype=dtype)
        elif dtype.kind == "f":
            arrays[spec.name] = uniform(rng, shape, dtype)
        else:
            arrays[spec.name] = np.zeros(shape, dtype=dtype)
    return make_dataset(arrays, None, source="timing inputs (no data given)")


def generated(spec: InputSpec, *, what: str, count: int = 1) -> None:
    """Refuse, before anything is allocated, `count` samples of an input that edgecomp would
    make itself (`what`: the timing sample, random calibration, an example input) when they
    take more memory than data may (MAX_DATA_BYTES): open dimensions chosen as 100000 x
    100000 would need tens of GiB and end in MemoryError."""
    shape = spec.concrete().shape
    need = count * math.prod(shape) * np.dtype(spec.dtype).itemsize
    if need > MAX_DATA_BYTES:
        raise InputError(f"input {spec.name!r} of shape {list(shape)} would take "
                         f"{size_text(need)} as {spec.dtype} for {what}, more than edgecomp "
                         f"makes in memory ({size_text(MAX_DATA_BYTES)}); choose smaller "
                         "open dimensions with --input-shape.")


def uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Values uniform in [0, 1) made in `dtype` itself (float32 for float16, which numpy's
    generator does not make), never in float64 first."""
    dtype = np.dtype(dtype)
    made = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
    return rng.random(shape, dtype=made).astype(dtype, copy=False)


def random_calibration(inputs, count: int, *, seed: int = 0) -> Dataset:
    """Uniform random float inputs: only on explicit request, because they calibrate poorly.

    `inputs` are the model's InputSpecs; integer inputs (token ids, a sample rate) have no
    meaningful random value, so they are refused.
    """
    integer = [spec.name for spec in inputs if not spec.is_float]
    if integer:
        raise InputError(f"--calib random cannot make values for integer inputs "
                         f"({', '.join(integer)}); pass --calib with real samples.")
    for spec in inputs:
        generated(spec, what=f"{count} random calibration samples", count=count)
    log.warning("calibrating on random data: int8 ranges will not match real inputs; "
                "pass --calib with real samples for a faithful int8 model")
    rng = np.random.default_rng(seed)
    arrays = {spec.name: uniform(rng, (count, *spec.sample_shape), np.float32)
              for spec in inputs}
    return make_dataset(arrays, None, source=f"random(seed={seed})")
