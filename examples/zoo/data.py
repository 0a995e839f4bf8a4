"""Real calibration and evaluation data for the zoo models, saved as edgecomp ``.npz`` files.

Each builder returns one array per model input name, sample axis first, and is
deterministic for a given ``(split, count, seed)``. The ``calib`` and ``eval`` splits never
share a sample, so evaluation data is held out from calibration:

* ``photos``: 224x224 crops of the colour photos bundled with scikit-image and
  scikit-learn, as array ``x`` (float32 NCHW, normalised for EfficientNet-Lite0). Both
  splits crop the same photos, but on different crop-box grids: calibration boxes start on
  multiples of 8 pixels, evaluation boxes 4 pixels off them, so no box is in both.
* ``sentences``: English sentences from the dataset descriptions shipped with
  scikit-learn and Python's own language reference (``pydoc_data``), tokenised for MiniLM:
  ``input_ids`` and ``attention_mask``, int64 ``(N, MINILM_SEQ)``. Each distinct sentence
  belongs to one split, chosen by a hash of its text.
* ``speech``: sentences of the matching split spoken by ``espeak-ng`` in several voices and
  speeds, with silence around each utterance, cut into Silero VAD steps: ``input`` float32
  ``(N, 576)``, ``state`` float32 ``(N, 2, 1, 128)`` (the recurrent state going into that
  step, from running the model over the whole utterance) and ``sr`` int64 ``(N,)``.

Command line: ``python -m examples.zoo.data KIND --split calib|eval --count N -o FILE.npz``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.resources
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from examples.zoo.models import (EFFICIENTNET_MEAN, EFFICIENTNET_SIZE, EFFICIENTNET_STD,
                                 MINILM_SEQ, minilm_path, silero_vad_onnx_path)

if TYPE_CHECKING:
    import onnxruntime
    from transformers import PreTrainedTokenizerBase

Arrays = dict[str, np.ndarray]

SPLITS = ("calib", "eval")
KINDS = ("photos", "sentences", "speech")


def _rng(kind: str, split: str, seed: int) -> np.random.Generator:
    """A generator of its own for each (kind, split, seed)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    return np.random.default_rng([seed, SPLITS.index(split), KINDS.index(kind)])


# --- photos -------------------------------------------------------------------------------

#: Colour photographs that ship with scikit-image (``skimage.data``) and scikit-learn.
PHOTO_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "hubble_deep_field",
               "china", "flower")

#: Crop boxes lie on a lattice of this step; the eval lattice is offset by half a step.
CROP_GRID = 8
CROP_MIN_SCALE = 0.4


@dataclass(frozen=True)
class Crop:
    """A square crop box of one photo, optionally mirrored left to right."""

    image: str
    top: int
    left: int
    size: int
    flip: bool


@functools.cache
def photo(name: str) -> np.ndarray:
    """One bundled photo as uint8 ``(H, W, 3)`` RGB."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    if name not in PHOTO_NAMES:
        raise ValueError(f"unknown photo {name!r}; use one of {', '.join(PHOTO_NAMES)}.")
    return getattr(skimage.data, name)()[..., :3]


def photo_crops(split: str, count: int, seed: int = 0) -> list[Crop]:
    """``count`` distinct random crop boxes (photo, position, scale, flip) of one split."""
    rng = _rng("photos", split, seed)
    offset = SPLITS.index(split) * CROP_GRID // 2
    chosen: dict[Crop, None] = {}
    while len(chosen) < count:
        name = PHOTO_NAMES[rng.integers(len(PHOTO_NAMES))]
        height, width = photo(name).shape[:2]
        largest = (min(height, width) - CROP_GRID // 2) // CROP_GRID
        smallest = max(1, round(CROP_MIN_SCALE * min(height, width) / CROP_GRID))
        size = int(rng.integers(smallest, largest + 1)) * CROP_GRID
        top = offset + CROP_GRID * int(rng.integers((height - size - offset) // CROP_GRID + 1))
        left = offset + CROP_GRID * int(rng.integers((width - size - offset) // CROP_GRID + 1))
        chosen.setdefault(Crop(name, top, left, size, bool(rng.integers(2))), None)
    return list(chosen)


def render_crop(crop: Crop) -> np.ndarray:
    """One crop resized to 224x224 and normalised for EfficientNet-Lite0: float32 (3, H, W)."""
    from PIL import Image

    pixels = photo(crop.image)[crop.top:crop.top + crop.size, crop.left:crop.left + crop.size]
    image = Image.fromarray(pixels).resize((EFFICIENTNET_SIZE, EFFICIENTNET_SIZE),
                                           Image.Resampling.BICUBIC)
    if crop.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array = (np.asarray(image, dtype=np.float32) - EFFICIENTNET_MEAN) / EFFICIENTNET_STD
    return array.transpose(2, 0, 1)


def photos(split: str = "calib", count: int = 256, seed: int = 0) -> Arrays:
    """``x``: float32 ``(count, 3, 224, 224)`` crops of real photos, see ``photo_crops``."""
    crops = photo_crops(split, count, seed)
    x = np.empty((count, 3, EFFICIENTNET_SIZE, EFFICIENTNET_SIZE), dtype=np.float32)
    for i, crop in enumerate(crops):
        x[i] = render_crop(crop)
    return {"x": x}


# --- sentences ----------------------------------------------------------------------------

_RST_MARKUP = [(re.compile(pattern), replacement) for pattern, replacement in [
    (r":\w+:`([^`<]*?)\s*(<[^>]*>)?`", r"\1"),   # :ref:`text <target>`
    (r"`([^`<]*?)\s*<[^>]*>`_*", r"\1"),          # `text <url>`_
    (r"``([^`]*)``", r"\1"),
    (r"`([^`]*)`_*", r"\1"),
    (r"\*\*?([^*]+)\*\*?", r"\1"),
    (r"\[\d+\]_?", ""),
]]
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')]?\s+(?=[\"'(]?[A-Z])")
_ABBREVIATION = re.compile(r"\b(e\.g|i\.e|etc|vs|al|fig|dr|mr|mrs|ms|no|cf|approx|proc|vol|pp"
                           r"|inc|jr|st)\.$", re.IGNORECASE)
_PLAIN_SENTENCE = re.compile(r"^[A-Z][A-Za-z0-9 ,;:'\"()\-]*[A-Za-z0-9)\"'][.!?]$")
_UNDERLINE = re.compile(r"^\s*([=\-*~^#+])\1{2,}\s*$")


def _documents() -> Iterator[tuple[str, bool]]:
    """(text, is reStructuredText) of every bundled document the sentences come from."""
    import pydoc_data.topics

    descriptions = importlib.resources.files("sklearn.datasets.descr")
    for entry in sorted(descriptions.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".rst"):
            yield entry.read_text(encoding="utf-8"), True
    for key in sorted(pydoc_data.topics.topics):
        yield pydoc_data.topics.topics[key], False


def _paragraphs(text: str) -> Iterator[str]:
    """Prose paragraphs, each on one line, without headings, grammar rules or examples."""
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        kept = [line.strip() for i, line in enumerate(lines)
                if not _UNDERLINE.match(line)
                and not (i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1]))]
        paragraph = " ".join(kept)
        if paragraph and not any(mark in paragraph for mark in ("::=", ">>>", "|")):
            yield paragraph


def _split_sentences(paragraph: str) -> Iterator[str]:
    pending = ""
    for piece in _SENTENCE_END.split(paragraph):
        pending = f"{pending} {piece}".strip()
        if not _ABBREVIATION.search(pending):
            yield pending
            pending = ""


def _is_plain(sentence: str) -> bool:
    """A whole prose sentence of 6-30 words, with no code, URLs or long numbers."""
    words = sentence.split()
    return (6 <= len(words) <= 30 and bool(_PLAIN_SENTENCE.match(sentence))
            and sum(c.isdigit() for c in sentence) <= 4)


def _split_of(sentence: str) -> str:
    return SPLITS[hashlib.sha256(sentence.lower().encode()).digest()[0] % 2]


@functools.cache
def sentence_pool(split: str) -> tuple[str, ...]:
    """Every distinct bundled sentence of one split (the two splits share none)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    seen: dict[str, str] = {}
    for text, is_rst in _documents():
        for paragraph in _paragraphs(text):
            if is_rst:
                for pattern, replacement in _RST_MARKUP:
                    paragraph = pattern.sub(replacement, paragraph)
            for sentence in _split_sentences(re.sub(r"\s+", " ", paragraph)):
                if _is_plain(sentence):
                    seen.setdefault(sentence.lower(), sentence)
    return tuple(s for s in seen.values() if _split_of(s) == split)


def pick_sentences(split: str, count: int, seed: int = 0) -> list[str]:
    """``count`` different sentences of one split, in random order."""
    pool = sentence_pool(split)
    if count > len(pool):
        raise ValueError(f"only {len(pool)} distinct {split} sentences are bundled; "
                         f"asked for {count}.")
    order = _rng("sentences", split, seed).permutation(len(pool))[:count]
    return [pool[i] for i in order]


@functools.lru_cache(maxsize=1)
def minilm_tokenizer() -> PreTrainedTokenizerBase:
    """MiniLM's own WordPiece tokenizer, loaded from the packaged model folder."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


def tokenize(texts: list[str]) -> Arrays:
    """``input_ids`` and ``attention_mask``, int64 ``(len(texts), MINILM_SEQ)``."""
    tokens = minilm_tokenizer()(texts, padding="max_length", truncation=True,
                                max_length=MINILM_SEQ, return_tensors="np")
    return {name: np.asarray(tokens[name], dtype=np.int64)
            for name in ("input_ids", "attention_mask")}


def sentences(split: str = "calib", count: int = 256, seed: int = 0) -> Arrays:
    """Real English sentences tokenised for ``minilm``: ``input_ids``, ``attention_mask``."""
    return tokenize(pick_sentences(split, count, seed))


# --- speech -------------------------------------------------------------------------------

SAMPLE_RATE = 16_000
#: Silero VAD at 16 kHz: 512 new samples per step, preceded by the previous step's last 64.
VAD_CHUNK = 512
VAD_CONTEXT = 64
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-us-nyc", "en-us+f3", "en-gb+f2",
          "en-gb-x-rp+m3")
SPEEDS = (130, 155, 180, 205)  # words per minute
#: Utterances made per split: enough for this many times ``count`` steps, then sampled.
_SPEECH_OVERSAMPLE = 3


def espeak(text: str, voice: str, speed: int) -> np.ndarray:
    """``text`` spoken by espeak-ng, as float32 samples in [-1, 1] at 16 kHz."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    program = shutil.which("espeak-ng")
    if program is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng).")
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        subprocess.run([program, "-w", str(wav), "-s", str(speed), "-v", voice, "--", text],
                       check=True, capture_output=True)
        rate, samples = wavfile.read(wav)
    audio = samples.astype(np.float32) / 32768.0
    divisor = np.gcd(rate, SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // divisor, rate // divisor).astype(np.float32)


def _utterance(text: str, rng: np.random.Generator) -> np.ndarray:
    """One sentence in a random voice, speed and level, with 0.2-1.5 s of quiet around it.

    The quiet is a faint white-noise floor (-70 to -50 dBFS), as from a microphone.
    """
    voice = VOICES[rng.integers(len(VOICES))]
    speech = espeak(text, voice, int(SPEEDS[rng.integers(len(SPEEDS))]))
    speech *= rng.uniform(0.2, 0.9) / max(float(np.abs(speech).max()), 1e-6)
    before, after = (int(rng.uniform(0.2, 1.5) * SAMPLE_RATE) for _ in range(2))
    audio = np.concatenate([np.zeros(before, np.float32), speech, np.zeros(after, np.float32)])
    audio = np.pad(audio, (0, -len(audio) % VAD_CHUNK))
    noise = 10.0 ** (rng.uniform(-70.0, -50.0) / 20.0)
    return (audio + rng.normal(0.0, noise, audio.shape)).astype(np.float32)


def _vad_session() -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(silero_vad_onnx_path()), options,
                                        providers=["CPUExecutionProvider"])


def vad_steps(audio: np.ndarray,
              session: onnxruntime.InferenceSession | None = None) -> Arrays:
    """Run Silero VAD over one 16 kHz stream; the inputs of every step, in order."""
    session = session or _vad_session()
    steps = len(audio) // VAD_CHUNK
    inputs = np.empty((steps, VAD_CONTEXT + VAD_CHUNK), np.float32)
    states = np.empty((steps, 2, 1, 128), np.float32)
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros(VAD_CONTEXT, np.float32)
    rate = np.array(SAMPLE_RATE, dtype=np.int64)
    for i in range(steps):
        inputs[i, :VAD_CONTEXT] = context
        inputs[i, VAD_CONTEXT:] = audio[i * VAD_CHUNK:(i + 1) * VAD_CHUNK]
        states[i] = state
        _, state = session.run(None, {"input": inputs[i:i + 1], "state": state, "sr": rate})
        context = inputs[i, -VAD_CONTEXT:]
    return {"input": inputs, "state": states, "sr": np.full(steps, SAMPLE_RATE, np.int64)}


def vad_probability(arrays: Arrays) -> np.ndarray:
    """Silero VAD's speech probability for each stored step, float32 ``(N,)``."""
    state = np.ascontiguousarray(arrays["state"][:, :, 0].transpose(1, 0, 2))
    output, _ = _vad_session().run(None, {"input": arrays["input"], "state": state,
                                          "sr": np.array(SAMPLE_RATE, dtype=np.int64)})
    return output[:, 0]


def speech(split: str = "calib", count: int = 256, seed: int = 0) -> Arrays:
    """Silero VAD steps of real (synthesised) speech and pauses: ``input``, ``state``, ``sr``.

    Utterances of the split's sentences are run through the model one stream at a time;
    ``count`` of their steps are then drawn at random, each with the state that the model
    carried into it.
    """
    rng = _rng("speech", split, seed)
    pool = sentence_pool(split)
    order = rng.permutation(len(pool))
    session = _vad_session()
    parts: list[Arrays] = []
    made = 0
    while made < _SPEECH_OVERSAMPLE * count:
        text = pool[order[len(parts) % len(pool)]]
        parts.append(vad_steps(_utterance(text, rng), session))
        made += len(parts[-1]["sr"])
    steps = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    chosen = np.sort(rng.choice(made, size=count, replace=False))
    return {name: array[chosen] for name, array in steps.items()}


# --- command line -------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[str, int, int], Arrays]] = {
    "photos": photos, "sentences": sentences, "speech": speech}


def save(arrays: Arrays, path: Path) -> Path:
    """Write the arrays to an uncompressed ``.npz`` file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m examples.zoo.data KIND --split calib|eval --count N -o FILE.npz``."""
    parser = argparse.ArgumentParser(prog="python -m examples.zoo.data",
                                     description="Build real calibration/evaluation data.")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--split", choices=SPLITS, default="calib")
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    start = time.perf_counter()
    arrays = BUILDERS[args.kind](args.split, args.count, args.seed)
    save(arrays, args.output)
    shapes = ", ".join(f"{k} {a.dtype}{list(a.shape)}" for k, a in arrays.items())
    print(f"{args.output}: {shapes} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
