"""The main flow's commands: deploy, export, bench and compare."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from edgecomp.errors import InputError

log = logging.getLogger(__name__)


def add_parser(subparsers) -> None:
    deploy = subparsers.add_parser(
        "deploy", help="compress, export, verify, measure and record a model on a target",
        description="Run the whole flow. With no MODEL, the built-in demo CNN on scikit-learn's "
                    "digits is trained once (cached) and deployed.")
    _model_args(deploy, optional=True)
    _data_args(deploy)
    _export_args(deploy)
    _measure_args(deploy)
    deploy.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a plan decision (see `plan`)")
    deploy.add_argument("--recipe", help="compress with this recipe (file or name) first")
    deploy.add_argument("--train", help="training data for recipes that fine-tune")
    from edgecomp.commands.compress_cmd import add_training_args

    add_training_args(deploy)
    deploy.add_argument("--no-baseline", action="store_true",
                        help="with --recipe, skip the uncompressed fp32 baseline artifacts")
    deploy.add_argument("-o", "--out", type=Path, default=None,
                        help="artifact directory (default ./edgecomp-out/<model>)")
    deploy.add_argument("--json", type=Path, help="write the result objects to this JSON file")
    deploy.add_argument("--no-record", action="store_true",
                        help="do not add the results to the store")
    deploy.set_defaults(func=run_deploy)

    export = subparsers.add_parser("export", help="export a model to LiteRT or ONNX")
    _model_args(export, optional=False)
    _data_args(export)
    _export_args(export)
    export.add_argument("-o", "--out", type=Path, required=True, help="artifact directory")
    export.set_defaults(func=run_export)

    bench = subparsers.add_parser("bench", help="measure exported artifacts on a target")
    bench.add_argument("artifacts", nargs="+", type=Path, metavar="ARTIFACT",
                       help=".tflite or .onnx files (their .json manifests are used if present)")
    bench.add_argument("--eval", help="evaluation data with labels: report top-1 accuracy")
    _measure_args(bench)
    bench.add_argument("--json", type=Path, help="write the result objects to this JSON file")
    bench.add_argument("--no-record", action="store_true")
    bench.set_defaults(func=run_bench)

    compare = subparsers.add_parser("compare", help="table of recorded results, fastest first")
    compare.add_argument("--model")
    compare.add_argument("--target")
    compare.add_argument("--all", action="store_true",
                         help="every recorded run, not only the latest of each artifact")
    compare.add_argument("--failed", action="store_true", help="include failed measurements")
    compare.add_argument("--json", type=Path, help="write the result objects to this JSON file")
    compare.set_defaults(func=run_compare)


def _model_args(parser: argparse.ArgumentParser, *, optional: bool) -> None:
    parser.add_argument("model", nargs="?" if optional else None, metavar="MODEL",
                        help="package.module:function, a .pt2 torch.export file or an .onnx file"
                             + (" (default: the built-in demo)" if optional else ""))
    parser.add_argument("--weights", type=Path, help="state-dict file for a factory model")
    parser.add_argument("--input-shape", help="model input shape, e.g. 1,3,224,224")


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calib", help="calibration data: .npz (x, optional y), image folder, "
                                        "'demo' (digits), or 'random' (warned and recorded)")
    parser.add_argument("--eval", help="evaluation data: .npz or image folder; labels give top-1")
    parser.add_argument("--calib-size", type=int, default=256,
                        help="calibration samples to use (default 256)")
    parser.add_argument("--eval-size", type=int, help="evaluation samples to use (default all)")
    parser.add_argument("--image-size", help="resize images to HxW, e.g. 224x224")
    parser.add_argument("--mean", help="per-channel mean for images, e.g. 0.485,0.456,0.406")
    parser.add_argument("--std", help="per-channel std for images, e.g. 0.229,0.224,0.225")
    parser.add_argument("--grayscale", action="store_true", help="load images as one channel")
    parser.add_argument("--seed", type=int, default=0)


def _export_args(parser: argparse.ArgumentParser) -> None:
    from edgecomp.export.base import CalibrationMethod, Precision

    parser.add_argument("--format", dest="formats", action="append",
                        choices=["tflite", "onnx"], help="repeatable (default: both)")
    parser.add_argument("--precision", dest="precisions", action="append",
                        choices=[p.value for p in Precision],
                        help="repeatable (default: fp32 and int8)")
    parser.add_argument("--io-dtype", choices=["float32", "int8"],
                        help="int8 models' input/output tensors (LiteRT; default: the plan's, "
                             "else float32)")
    parser.add_argument("--per-tensor", action="store_true",
                        help="per-tensor weight scales instead of per-channel")
    parser.add_argument("--calibration-method", choices=[m.value for m in CalibrationMethod],
                        default="minmax", help="ONNX static int8 activation ranges")
    parser.add_argument("--reduce-range", action="store_true",
                        help="7-bit ONNX weights, for x86 CPUs without VNNI")


def _measure_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="local",
                        help="where to measure: 'local' or a target name (default local)")
    parser.add_argument("--runs", type=int, default=50, help="at least this many timed runs")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="and at least this many seconds of timed runs")
    parser.add_argument("--warmup-runs", type=int, default=5)
    parser.add_argument("--warmup-seconds", type=float, default=0.5)
    parser.add_argument("--threads", type=int, help="runtime threads (default: all cores)")
    parser.add_argument("--runtime", default="auto",
                        help="ai_edge_litert, tflite_runtime, tensorflow, onnxruntime or auto")


def _floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{text!r} is not a comma-separated list of numbers.") from None


def _data_plan(args):
    from edgecomp.pipeline import DataPlan
    from edgecomp.sources import parse_shape

    if args.calib_size <= 0:
        raise InputError("--calib-size must be a positive number of samples.")
    image_options = {}
    if args.image_size:
        image_options["size"] = parse_shape(args.image_size)[-2:]
    if args.mean:
        image_options["mean"] = _floats(args.mean)
    if args.std:
        image_options["std"] = _floats(args.std)
    if args.grayscale:
        image_options["grayscale"] = True
    return DataPlan(calib=args.calib, eval=args.eval, calib_size=args.calib_size,
                    eval_size=args.eval_size, seed=args.seed, image_options=image_options)


def _export_plan(args, *, default_formats=("tflite", "onnx")):
    from edgecomp.export.base import CalibrationMethod, Precision
    from edgecomp.pipeline import ExportPlan

    return ExportPlan(
        formats=tuple(dict.fromkeys(args.formats or default_formats)),
        precisions=tuple(dict.fromkeys(Precision(p) for p in (args.precisions or
                                                               ["fp32", "int8"]))),
        io_dtype=args.io_dtype or "float32", per_channel=not args.per_tensor,
        calibration_method=CalibrationMethod(args.calibration_method),
        reduce_range=args.reduce_range)


def _measure_options(args):
    from edgecomp.remote.base import MeasureOptions

    if args.runs <= 0 or args.seconds < 0:
        raise InputError("--runs must be positive and --seconds not negative.")
    return MeasureOptions(runs=args.runs, seconds=args.seconds, warmup_runs=args.warmup_runs,
                          warmup_seconds=args.warmup_seconds, threads=args.threads,
                          runtime=args.runtime, seed=getattr(args, "seed", 0))


def _load_source(args, data_plan, progress):
    from edgecomp.sources import demo_model, load_model, parse_shape

    input_shape = parse_shape(args.input_shape) if args.input_shape else None
    if getattr(args, "model", None) in (None, "demo"):
        return demo_model(progress=progress)
    sample_shape = None
    if data_plan.calib not in (None, "random") or data_plan.eval:
        from edgecomp.data import load_data

        sample_shape = load_data(data_plan.eval or data_plan.calib,
                                 **data_plan.image_options).sample_shape
    return load_model(args.model, weights=args.weights, input_shape=input_shape,
                      sample_shape=sample_shape)


def run_deploy(args) -> int:
    from edgecomp.commands.ui import progress_bars
    from dataclasses import replace

    from edgecomp.data import load_data
    from edgecomp.pipeline import (compress, export_all, measure_and_record, prepare,
                                   reference_outputs)
    from edgecomp.remote.runner import open_transport

    data_plan = _data_plan(args)
    plan = _export_plan(args)
    options = _measure_options(args)
    demo = args.model in (None, "demo")
    if demo:
        # The demo's data is built in: real digits, named in every record.
        data_plan = type(data_plan)(**{**data_plan.__dict__,
                                       "calib": data_plan.calib or "digits:train",
                                       "eval": data_plan.eval or "digits:val"})
    from edgecomp.export.base import Precision

    with progress_bars() as progress:
        source = _load_source(args, data_plan, progress)
        hardware = _hardware_plan(args, source)
        if hardware is not None:
            plan, options = _apply_plan(args, hardware, plan, options, demo=demo)
        prepared = prepare(source, data_plan,
                           needs_calib=Precision.INT8 in plan.precisions)
        prepared.plan = hardware.to_json() if hardware is not None else None
        with open_transport(args.target) as transport:
            out_dir = args.out or Path("edgecomp-out") / source.name
            # The reference is the uncompressed float model, also for compressed artifacts.
            reference = reference_outputs(prepared)
            artifacts = []
            if args.recipe:
                if not args.no_baseline:
                    baseline = replace(plan, precisions=(Precision.FP32,))
                    artifacts += export_all(prepared, baseline, out_dir, progress=progress)
                train = load_data(args.train or ("digits:train" if demo else None)) \
                    if (args.train or demo) else None
                from edgecomp.commands.compress_cmd import training_functions

                prepared, _reports = compress(prepared, args.recipe, train=train,
                                              progress=progress, out_dir=out_dir,
                                              **training_functions(args))
                plan = _recipe_export(args, plan, prepared.plan["recipe"]["export"])
            artifacts += export_all(prepared, plan, out_dir, progress=progress)
            records = []
            for index, artifact in enumerate(artifacts):
                progress("measuring artifacts", index, len(artifacts))
                records.append(measure_and_record(artifact, prepared, transport, options,
                                                  reference=reference))
            progress("measuring artifacts", len(artifacts), len(artifacts))
    return _finish(args, records, command="deploy")


def _recipe_export(args, plan, export: dict):
    """A recipe's [export] table chooses precision/formats the user left open."""
    from dataclasses import replace

    from edgecomp.export.base import Precision

    changes = {}
    if export.get("precision") and not args.precisions:
        changes["precisions"] = (Precision(export["precision"]),)
    if export.get("formats") and not args.formats:
        changes["formats"] = tuple(export["formats"])
    return replace(plan, **changes)


def _hardware_plan(args, source):
    """The plan for the target's profile; `local` on a machine with no profile has none."""
    from edgecomp.commands.plan_cmd import plan_for, print_plan
    from edgecomp.plan import parse_overrides

    overrides = parse_overrides(args.overrides)
    if args.formats and len(set(args.formats)) == 1:
        # One format asked for: plan the runtime, delegate and precision for that format.
        overrides.setdefault("format", args.formats[0])
    try:
        hardware = plan_for(source, args.target, overrides)
    except InputError:
        if args.target != "local":
            raise
        log.info("no hardware profile for this machine; deploying without a plan")
        return None
    print_plan(hardware)
    return hardware


def _apply_plan(args, hardware, plan, options, *, demo: bool):
    """Let the plan choose what the user left open; explicit flags always win."""
    from dataclasses import replace

    from edgecomp.export.base import Precision

    changes = {"per_channel": not args.per_tensor and
               hardware.get("quant_scheme") == "per_channel_symmetric",
               "reduce_range": args.reduce_range or hardware.get("reduce_range") == "true"}
    if args.io_dtype is None:
        changes["io_dtype"] = hardware.get("io_dtype")
    if not demo and not args.formats:
        changes["formats"] = (hardware.get("format"),)
    if not demo and not args.precisions:
        chosen = Precision(hardware.get("precision"))
        if chosen == Precision.FP16 and hardware.get("format") == "onnx":
            # TensorRT builds fp16 engines from an fp32 ONNX file on the board.
            chosen = Precision.FP32
        changes["precisions"] = tuple(dict.fromkeys((Precision.FP32, chosen)))
    if args.threads is None:
        options = replace(options, threads=int(hardware.get("threads")))
    return replace(plan, **changes), options


def _finish(args, records, *, command: str) -> int:
    from edgecomp.commands.ui import comparison_table, console, err_console, write_json
    from edgecomp.results.compare import compare_rows
    from edgecomp.results.store import Store

    if not args.no_record:
        with Store() as store:
            store.add_run(records, command=shlex.join(["edgecomp", *sys.argv[1:]]))
            shown = compare_rows(store.records(include_failed=True), history=False)
        keys = {(r.model, r.target) for r in records}
        shown = [row for row in shown if (row.record.model, row.record.target) in keys]
    else:
        shown = compare_rows(records)
    console.print(comparison_table(shown, title=f"{command}: {len(records)} artifact(s) measured"))
    if args.json:
        write_json(args.json, records)
    failed = [r for r in records if not r.ok]
    for record in failed:
        err_console.print(f"[red]failed[/red] {record.artifact_name}: {record.error}")
    return 1 if failed else 0


def run_export(args) -> int:
    from edgecomp.commands.ui import console, progress_bars
    from edgecomp.export.base import Precision
    from edgecomp.pipeline import export_all, prepare

    data_plan = _data_plan(args)
    plan = _export_plan(args, default_formats=("tflite",))
    with progress_bars() as progress:
        source = _load_source(args, data_plan, progress)
        prepared = prepare(source, data_plan, needs_calib=Precision.INT8 in plan.precisions)
        artifacts = export_all(prepared, plan, args.out, progress=progress)
    for artifact in artifacts:
        share = artifact.manifest.get("integer_weight_share")
        console.print(f"{artifact.path}  {artifact.size_bytes} bytes  "
                      f"integer weights {share:.0%}  manifest {artifact.manifest_path.name}")
    return 0


def run_bench(args) -> int:
    from edgecomp.commands.ui import progress_bars
    from edgecomp.export.bundle import artifact_from_file
    from edgecomp.pipeline import Prepared, measure_and_record
    from edgecomp.remote.runner import open_transport
    from edgecomp.sources import ModelSource

    options = _measure_options(args)
    artifacts = [artifact_from_file(path) for path in args.artifacts]
    eval_set = None
    if args.eval:
        from edgecomp.data import load_data

        eval_set = load_data(args.eval)
    records = []
    with progress_bars() as progress, open_transport(args.target) as transport:
        for index, artifact in enumerate(artifacts):
            progress("measuring artifacts", index, len(artifacts))
            import torch

            prepared = Prepared(source=ModelSource(
                name=artifact.manifest["model"], kind="artifact", module=None,
                example_input=torch.zeros(1), sha256=artifact.manifest["source_sha256"],
                spec=str(artifact.path)), calib=None, eval=eval_set)
            records.append(measure_and_record(artifact, prepared, transport, options,
                                              reference=None))
        progress("measuring artifacts", len(artifacts), len(artifacts))
    return _finish(args, records, command="bench")


def run_compare(args) -> int:
    from edgecomp.commands.ui import comparison_table, console, write_json
    from edgecomp.results.compare import compare_rows
    from edgecomp.results.store import Store

    with Store() as store:
        records = store.records(model=args.model, target=args.target,
                                include_failed=args.failed)
        location = store.path
    rows = compare_rows(records, history=args.all)
    if not rows:
        console.print(f"no results recorded in {location} yet; run `edgecomp deploy` first.")
    else:
        console.print(comparison_table(rows, title=f"results in {location}"))
    if args.json:
        write_json(args.json, [row.record for row in rows])
    return 0
