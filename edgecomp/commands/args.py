"""The flags several commands share, and what they become: the library's typed requests.

Each group of flags has one `add_*` function that declares them and one function that
turns the parsed flags into the request the library takes (`model_spec`, `data_plan`,
`export_choices`, `measure_choices`), so deploy, export, bench, plan and compress spell
them alike. The library is imported inside the functions: `edgecomp --help` stays instant.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from edgecomp.errors import InputError

NAME_HELP = ("the model's name in results and file names (letters, digits, . _ -); default: "
             "the factory's module and function (models.make), a file's stem, or demo-cnn")


def add_output_arg(parser: argparse.ArgumentParser, *flags: str, folder: bool,
                   **options) -> None:
    """A flag naming what the command writes (a folder with `folder`, else a file): the
    CLI checks it can be written before the command does any work (`check_outputs`), so
    an hour of measuring never ends in a file that cannot be written."""
    action = parser.add_argument(*flags, type=Path, **options)
    declared = parser.get_default("output_flags") or ()
    parser.set_defaults(output_flags=(*declared, (action.dest, "/".join(flags), folder)))


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, with one sentence naming the flag, an output given to a flag declared by
    `add_output_arg` that cannot be written: a file where a folder is wanted or the
    reverse, or a folder (the nearest one that exists) this user cannot write in.
    Nothing is created: the test file is anonymous."""
    import tempfile

    for dest, flag, folder in getattr(args, "output_flags", ()):
        path = getattr(args, dest, None)
        if path is None:
            continue
        if folder and path.exists() and not path.is_dir():
            raise InputError(f"{flag} {path} is a file, not a folder; name a folder to "
                             "write into.")
        if not folder and path.is_dir():
            raise InputError(f"{flag} {path} is a folder; name the file to write in it.")
        base = path if folder else path.parent
        while not base.exists() and base != base.parent:
            base = base.parent  # the nearest folder that exists; the rest is made later
        if not base.is_dir():
            raise InputError(f"{flag} {path} cannot be written: {base} is a file, not a "
                             "folder.")
        try:
            with tempfile.TemporaryFile(dir=base):
                pass
        except OSError as exc:
            raise InputError(f"{flag} {path} cannot be written: {base} does not take new "
                             f"files ({exc.strerror or exc}); give a place you can write "
                             "to.") from exc


def add_wide_arg(parser: argparse.ArgumentParser) -> None:
    """--wide: every column of the tables, past the 120 they fit by default."""
    parser.add_argument("--wide", action="store_true",
                        help="show every column (p90, interleaved rounds, spread, load, "
                        "energy, run, date, the exported file's size), past 120 columns")


def add_model_args(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    """MODEL, --weights, --input-shape and --name."""
    parser.add_argument("model", nargs="?" if optional else None, metavar="MODEL",
                        help="package.module:function, a .pt2 torch.export file or an .onnx file"
                             + (" (default: the built-in demo)" if optional else ""))
    parser.add_argument("--weights", type=Path, help="state-dict file for a factory model")
    add_input_shape_arg(parser)
    parser.add_argument("--name", help=NAME_HELP)


def add_input_shape_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-shape", action="append", metavar="[NAME=]DIMS",
                        help="the input shape of a one-input model (1,3,224,224), or NAME=DIMS "
                        "for each input whose open dimensions you choose (input=1,16000); "
                        "repeatable")


def add_training_args(parser: argparse.ArgumentParser) -> None:
    """Flags for tasks the built-in classification loop does not fit."""
    parser.add_argument("--loss", metavar="MODULE:FUNCTION",
                        help="loss(outputs, labels) for the built-in training loop")
    parser.add_argument("--train-fn", metavar="MODULE:FUNCTION",
                        help="train(model, ctx, epochs) -> model, replacing the built-in loop "
                             "in every pass that fine-tunes (ctx holds train/val data, teacher, "
                             "seed)")


def add_data_args(parser: argparse.ArgumentParser) -> None:
    """Calibration and evaluation data, and how images are read."""
    from edgecomp.model.data import DEFAULT_CALIB_SIZE

    parser.add_argument("--calib", help="calibration data: .npz (x, optional y), image folder, "
                                        "'demo' (digits), or 'random' (warned and recorded)")
    parser.add_argument("--eval", help="evaluation data: .npz or image folder; labels give top-1")
    parser.add_argument("--calib-size", type=int, default=DEFAULT_CALIB_SIZE,
                        help=f"calibration samples to use (default {DEFAULT_CALIB_SIZE})")
    parser.add_argument("--eval-size", type=int, help="evaluation samples to use (default all)")
    parser.add_argument("--image-size", help="resize images to HxW, e.g. 224x224")
    parser.add_argument("--mean", help="per-channel mean for images, e.g. 0.485,0.456,0.406")
    parser.add_argument("--std", help="per-channel std for images, e.g. 0.229,0.224,0.225")
    parser.add_argument("--grayscale", action="store_true", help="load images as one channel")
    parser.add_argument("--seed", type=int, default=0)


def add_export_args(parser: argparse.ArgumentParser) -> None:
    """What the artifacts are: formats, precisions and the int8 scheme."""
    from edgecomp.export import format_names
    from edgecomp.vocab import CalibrationMethod, IoDtype, Precision, choices

    parser.add_argument("--format", dest="formats", action="append",
                        choices=format_names(), help="repeatable (default: every format)")
    parser.add_argument("--precision", dest="precisions", action="append",
                        choices=choices(Precision), help="repeatable (default: fp32 and int8)")
    parser.add_argument("--io-dtype", choices=choices(IoDtype),
                        help="int8 models' input/output tensors (LiteRT; default: the plan's, "
                             "else float32)")
    parser.add_argument("--per-tensor", action="store_true",
                        help="per-tensor weight scales instead of per-channel")
    parser.add_argument("--calibration-method", choices=choices(CalibrationMethod),
                        default=CalibrationMethod.MINMAX.value,
                        help="ONNX static int8 activation ranges")
    parser.add_argument("--reduce-range", action="store_true",
                        help="7-bit ONNX weights, for x86 CPUs without VNNI")
    parser.add_argument("--rebuild", action="store_true",
                        help="export again instead of reusing artifacts exported before with "
                             "the same model, data and options (kept in the artifact cache)")


def add_measure_args(parser: argparse.ArgumentParser) -> None:
    """Where and how long to measure, and the run's tag."""
    from edgecomp.pipeline.agent import (MAX_RUNS, MAX_SECONDS, MAX_WARMUP_RUNS,
                                         MAX_WARMUP_SECONDS, MeasureOptions)
    from edgecomp.pipeline.rounds import MAX_MIN_TIME, MAX_REPEAT, ROUNDS, ROUND_SECONDS

    parser.add_argument("--tag", metavar="NAME",
                        help="name this run (e.g. a release or a baseline) for `compare "
                        "--baseline`, `gate` and `report`; the git commit and branch are "
                        "recorded anyway")
    parser.add_argument("--target", dest="target_names", action="append", metavar="TARGET",
                        help="where to measure: 'local' or a target name (default local); "
                        "repeat it to measure on several boards at once")
    parser.add_argument("--targets", metavar="SELECTOR",
                        help="measure on every matching board of the inventory at once: "
                        "profile=NAME, group=NAME (a target file's `groups`), all, or "
                        "NAME,NAME")
    parser.add_argument("--runs", type=int,
                        help=f"at least this many timed runs (1 to {MAX_RUNS:,}; default "
                        f"{MeasureOptions.runs}, fewer on an emulated board)")
    parser.add_argument("--seconds", type=float,
                        help=f"and at least this many seconds of timed runs (0 to "
                        f"{MAX_SECONDS:g}; default {MeasureOptions.seconds:g}, 0 on an "
                        "emulated board)")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="time compared artifacts in N interleaved rounds (A/B/A/B; "
                        f"default {ROUNDS}, fewer on an emulated board; at most "
                        f"{MAX_REPEAT}); their ratio is the median "
                        "of the rounds, its spread shown; with one artifact, N repeated "
                        "measurements")
    parser.add_argument("--min-time", type=float, metavar="SECONDS",
                        help="at least this many timed seconds per artifact over its rounds "
                        f"(default {ROUND_SECONDS:g} s a round; at most {MAX_MIN_TIME:g})")
    parser.add_argument("--warmup-runs", type=int,
                        help=f"untimed runs first (0 to {MAX_WARMUP_RUNS:,}; default "
                        f"{MeasureOptions.warmup_runs}, fewer on an emulated board)")
    parser.add_argument("--warmup-seconds", type=float,
                        help=f"and at least this many seconds of them (0 to "
                        f"{MAX_WARMUP_SECONDS:g}; default {MeasureOptions.warmup_seconds:g}, "
                        "0 on an emulated board)")
    parser.add_argument("--threads", type=int,
                        help="runtime threads (default: the plan's, from the board's cores)")
    parser.add_argument("--runtime", default="auto",
                        help="ai_edge_litert, tflite_runtime, tensorflow, onnxruntime or auto "
                             "(default: the target file's runtime, else the plan's)")
    parser.add_argument("--profile-ops", action="store_true",
                        help="per-op times from the runtime's profiler on the board, in a "
                        "pass after the timed runs: top ops, the share outside the delegate "
                        "and in quantize/transpose-type ops (printed and in --json)")


def model_spec(args: argparse.Namespace):
    """MODEL, --weights, --input-shape and --name as a `ModelSpec`."""
    from edgecomp.model.signature import parse_input_shapes
    from edgecomp.pipeline.request import ModelSpec

    return ModelSpec(spec=getattr(args, "model", None), weights=args.weights,
                     input_shape=parse_input_shapes(args.input_shape), name=args.name)


def data_plan(args: argparse.Namespace):
    """The data flags as a `DataSpec`."""
    from edgecomp.model.signature import parse_shape
    from edgecomp.pipeline.request import DataSpec

    image_options = {}
    if args.image_size:
        image_options["size"] = parse_shape(args.image_size, flag="--image-size ")[-2:]
    if args.mean:
        image_options["mean"] = _floats(args.mean)
    if args.std:
        image_options["std"] = _floats(args.std)
    if args.grayscale:
        image_options["grayscale"] = True
    return DataSpec(calib=args.calib, eval=args.eval, calib_size=args.calib_size,
                    eval_size=args.eval_size, seed=args.seed, image_options=image_options)


def export_choices(args: argparse.Namespace):
    """The export flags as `ExportChoices` (None where the plan decides; the request turns
    the words into the vocabularies' members)."""
    from edgecomp.pipeline.request import ExportChoices

    return ExportChoices(formats=args.formats or None, precisions=args.precisions or None,
                         io_dtype=args.io_dtype, per_tensor=args.per_tensor,
                         calibration_method=args.calibration_method,
                         reduce_range=args.reduce_range)


def measure_choices(args: argparse.Namespace):
    """The measurement flags as `MeasureChoices`."""
    from edgecomp.pipeline.request import MeasureChoices

    return MeasureChoices(runs=args.runs, seconds=args.seconds, warmup_runs=args.warmup_runs,
                          warmup_seconds=args.warmup_seconds, threads=args.threads,
                          runtime=args.runtime, profile_ops=args.profile_ops,
                          repeat=args.repeat, min_time=args.min_time)


def targets(args: argparse.Namespace) -> list[str]:
    """The boards named by --target (repeatable) and --targets; `local` when none."""
    from edgecomp.pipeline.fleet import select_targets

    return select_targets(args.target_names, args.targets)


def input_values(values: list[str]) -> dict[str, float]:
    """--input-value NAME=NUMBER options by input name."""
    from edgecomp.config import key_value

    chosen: dict[str, float] = {}
    for value in values:
        name, number = key_value(value, flag="--input-value", example="NAME=NUMBER, e.g. sr=16000")
        try:
            chosen[name] = float(number)
        except ValueError:
            chosen[name] = math.nan
        if not math.isfinite(chosen[name]):
            raise InputError(f"--input-value {value!r}: write it as NAME=NUMBER, e.g. "
                             "sr=16000.")
    return chosen


def command_line() -> str:
    """The command as the user typed it, stored with the run."""
    return shlex.join(["edgecomp", *sys.argv[1:]])


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{text!r} is not a comma-separated list of numbers.") from None
