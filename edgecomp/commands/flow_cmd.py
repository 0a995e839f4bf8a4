"""The main flow's commands: deploy, export, bench and compare."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from edgecomp.errors import InputError
from edgecomp.results.provenance import check_tag

log = logging.getLogger(__name__)

NAME_HELP = ("the model's name in results and file names (letters, digits, . _ -); default: "
             "the factory's module and function (models.make), a file's stem, or demo-cnn")


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
    target = deploy.add_argument_group(
        "accuracy-aware int8", "With --eval data, int8 candidates (calibrations, then layers "
        "kept in float) are run in the target's runtime until one meets the target; an "
        "artifact below it is flagged.")
    target.add_argument("--min-cosine", type=float, default=0.99,
                        help="mean output cosine to the float model (default 0.99)")
    target.add_argument("--max-top1-drop", type=float, default=1.0,
                        help="top-1 drop in points, with labelled data (default 1)")
    target.add_argument("--min-agreement", type=float, metavar="PERCENT",
                        help="share of samples making the float model's call (top class, or "
                        "the side of 0.5 for one probability); also makes a miss fail")
    target.add_argument("--require-target", action="store_true",
                        help="exit with status 3 when an artifact is below the target")
    target.add_argument("--no-search", action="store_true",
                        help="export int8 with the plan's scheme only")
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
    bench.add_argument("--eval", help="evaluation data (.npz: x, or one array per input): "
                       "the artifacts run on it and are timed on its first sample; labels (y) "
                       "give top-1")
    bench.add_argument("--reference", type=Path, metavar="ARTIFACT",
                       help="an artifact to compare outputs with on --eval (e.g. the fp32 "
                       "model): agreement, run on the same target")
    bench.add_argument("--seed", type=int, default=0)
    add_input_shape_arg(bench)
    bench.add_argument("--input-value", dest="input_values", action="append", default=[],
                       metavar="NAME=NUMBER", help="without --eval: feed this constant to an "
                       "input when timing (e.g. sr=16000); else floats are random in [0, 1) "
                       "and integers 0")
    bench.add_argument("--name", help="the model's name in the results (default: each "
                       "artifact's manifest's, else its file's stem)")
    _measure_args(bench)
    bench.add_argument("--json", type=Path, help="write the result objects to this JSON file")
    bench.add_argument("--no-record", action="store_true")
    bench.set_defaults(func=run_bench)

    from edgecomp.results.select import SPECS

    compare = subparsers.add_parser(
        "compare", help="table of recorded results, fastest first",
        epilog=SPECS, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("--model")
    compare.add_argument("--target")
    compare.add_argument("--technique")
    compare.add_argument("--tag", help="only the runs with this tag")
    compare.add_argument("--since", metavar="WHEN",
                         help="only results since a date (2026-11-01), a time or an age (7d)")
    compare.add_argument("--baseline", metavar="SPEC",
                         help="show each artifact's change against the same artifact in "
                         "SPEC: run:ID, branch:NAME, tag:NAME, file:PATH, a file or a tag "
                         "(latency p50/p90 and size in percent, accuracy in points); the "
                         "baseline's runs are left out of the rows")
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
    add_input_shape_arg(parser)
    parser.add_argument("--name", help=NAME_HELP)


def add_input_shape_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-shape", action="append", metavar="[NAME=]DIMS",
                        help="the input shape of a one-input model (1,3,224,224), or NAME=DIMS "
                        "for each input whose open dimensions you choose (input=1,16000); "
                        "repeatable")


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
    from edgecomp.export import format_names
    from edgecomp.vocab import CalibrationMethod, Precision

    parser.add_argument("--format", dest="formats", action="append",
                        choices=format_names(), help="repeatable (default: every format)")
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
    parser.add_argument("--rebuild", action="store_true",
                        help="export again instead of reusing artifacts exported before with "
                             "the same model, data and options (kept in the artifact cache)")


def _measure_args(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--runs", type=int, default=50, help="at least this many timed runs")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="and at least this many seconds of timed runs")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="time compared artifacts in N interleaved rounds (A/B/A/B; "
                        "default 3); their ratio is the median of the rounds, its spread "
                        "shown; with one artifact, N repeated measurements")
    parser.add_argument("--min-time", type=float, metavar="SECONDS",
                        help="at least this many timed seconds per artifact over its rounds "
                        "(default 0.3 s a round)")
    parser.add_argument("--warmup-runs", type=int, default=5)
    parser.add_argument("--warmup-seconds", type=float, default=0.5)
    parser.add_argument("--threads", type=int,
                        help="runtime threads (default: the plan's, from the board's cores)")
    parser.add_argument("--runtime", default="auto",
                        help="ai_edge_litert, tflite_runtime, tensorflow, onnxruntime or auto "
                             "(default: the target file's runtime, else the plan's)")
    parser.add_argument("--profile-ops", action="store_true",
                        help="per-op times from the runtime's profiler on the board, in a "
                        "pass after the timed runs: top ops, the share outside the delegate "
                        "and in quantize/transpose-type ops (printed and in --json)")


def _floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{text!r} is not a comma-separated list of numbers.") from None


def _data_plan(args):
    from edgecomp.pipeline.build import DataPlan
    from edgecomp.model.signature import parse_shape

    if args.calib_size <= 0:
        raise InputError("--calib-size must be a positive number of samples.")
    image_options = {}
    if args.image_size:
        image_options["size"] = parse_shape(args.image_size, flag="--image-size ")[-2:]
    if args.mean:
        image_options["mean"] = _floats(args.mean)
    if args.std:
        image_options["std"] = _floats(args.std)
    if args.grayscale:
        image_options["grayscale"] = True
    return DataPlan(calib=args.calib, eval=args.eval, calib_size=args.calib_size,
                    eval_size=args.eval_size, seed=args.seed, image_options=image_options)


def _export_choices(args):
    from edgecomp.pipeline.deploy import ExportChoices
    from edgecomp.vocab import CalibrationMethod, Format, IoDtype, Precision

    return ExportChoices(
        formats=tuple(dict.fromkeys(Format(f) for f in args.formats)) if args.formats else None,
        precisions=tuple(dict.fromkeys(Precision(p) for p in args.precisions))
        if args.precisions else None,
        io_dtype=IoDtype(args.io_dtype) if args.io_dtype else None,
        per_tensor=args.per_tensor,
        calibration_method=CalibrationMethod(args.calibration_method),
        reduce_range=args.reduce_range)


def _measure_choices(args):
    from edgecomp.pipeline.deploy import MeasureChoices

    return MeasureChoices(runs=args.runs, seconds=args.seconds, warmup_runs=args.warmup_runs,
                          warmup_seconds=args.warmup_seconds, threads=args.threads,
                          runtime=args.runtime, profile_ops=args.profile_ops,
                          repeat=args.repeat, min_time=args.min_time)


def _model_spec(args):
    from edgecomp.pipeline.deploy import ModelSpec
    from edgecomp.model.signature import parse_input_shapes

    return ModelSpec(spec=getattr(args, "model", None), weights=args.weights,
                     input_shape=parse_input_shapes(args.input_shape),
                     name=args.name)


def _command() -> str:
    return shlex.join(["edgecomp", *sys.argv[1:]])


def _targets(args) -> list[str]:
    """The boards named by --target (repeatable) and --targets; `local` when none."""
    from edgecomp.pipeline.fleet import select_targets

    return select_targets(args.target_names, args.targets)


def run_deploy(args) -> int:
    from rich.markup import escape

    from edgecomp.commands.plan_cmd import print_plan
    from edgecomp.commands.ui import console, progress_bars, shown_logs
    from edgecomp.pipeline.deploy import DeployRequest, deploy
    from edgecomp.hardware.plan import parse_overrides

    overrides = parse_overrides(args.overrides)
    if args.formats and len(set(args.formats)) == 1:
        # One format asked for: plan the runtime, delegate and precision for that format.
        overrides.setdefault("format", parse_overrides([f"format={args.formats[0]}"])["format"])
    targets = _targets(args)
    request = DeployRequest(
        model=_model_spec(args), target=targets[0], targets=tuple(targets),
        data=_data_plan(args),
        export=_export_choices(args), measure=_measure_choices(args), overrides=overrides,
        recipe=args.recipe, train=args.train, loss=args.loss, train_fn=args.train_fn,
        baseline=not args.no_baseline, out_dir=args.out, record=not args.no_record,
        rebuild=args.rebuild,
        command=_command(), agreement=_agreement_target(args), search=not args.no_search,
        tag=check_tag(args.tag))
    def on_plan(plan, target: str) -> None:
        if len(targets) > 1:
            console.print(f"[bold]{escape(target)}[/bold]")
        print_plan(plan)

    with progress_bars() as progress, shown_logs("edgecomp.export.cache"):
        records = deploy(request, progress=progress, on_plan=on_plan)
    status = _finish(args, records, command="deploy")
    below = [r for r in records if any(f.startswith("below the agreement") for f in r.flags)]
    if status == 0 and below and (args.require_target or args.min_agreement is not None):
        return 3
    return status


def _agreement_target(args):
    from edgecomp.quantize.search import AgreementTarget

    if not 0 < args.min_cosine <= 1 or args.max_top1_drop < 0 or (
            args.min_agreement is not None and not 0 <= args.min_agreement <= 100):
        raise InputError("--min-cosine must be in (0, 1], --max-top1-drop not negative and "
                         "--min-agreement a percentage.")
    return AgreementTarget(min_cosine=args.min_cosine, max_top1_drop=args.max_top1_drop,
                           min_decision=args.min_agreement)


def _finish(args, records, *, command: str) -> int:
    from edgecomp.commands.ui import comparison_table, console, err_console, write_json
    from edgecomp.results.compare import compare_rows, model_identity
    from edgecomp.results.store import Store

    run = next((r.run_id for r in records if r.run_id), None)
    if not args.no_record:
        # This run's models (name and content) on its targets, with what earlier runs
        # measured of them and this run did not: those rows are marked.
        keys = {(model_identity(r), r.target) for r in records}
        with Store() as store:
            stored = [r for r in store.records(include_failed=True)
                      if (model_identity(r), r.target) in keys]
        shown = compare_rows(stored, history=False, current_run=run)
    else:
        shown = compare_rows(records)
    earlier = sum(row.earlier for row in shown)
    title = (f"{command}: {len(records)} artifact(s) measured"
             + (f" in run {run}" if run else "")
             + (f"; {earlier} row(s) from earlier runs, marked (earlier)" if earlier else ""))
    console.print(comparison_table(shown, title=title))
    _print_across_boards([row.record for row in shown])
    from edgecomp.commands.profile_view import print_profiles

    print_profiles(records, console)
    if args.json:
        write_json(args.json, records)
    from rich.markup import escape

    failed = [r for r in records if not r.ok]
    for record in failed:
        err_console.print(f"[red]failed[/red] {escape(record.artifact_name)}: "
                          f"{escape(str(record.error))}")

    shown_search = set()
    for record in records:
        search = record.manifest.get("search")
        if search and record.artifact_sha256 not in shown_search:
            shown_search.add(record.artifact_sha256)
            console.print(f"{record.artifact_name}: kept int8 candidate \"{search['kept']}\" "
                          f"of {len(search['tried'])} tried (all in its manifest)",
                          markup=False, highlight=False)
        for flag in record.flags:
            err_console.print(f"[yellow](!)[/yellow] {escape(record.artifact_name)}: {escape(flag)}",
                              markup=True, highlight=False)
        _warn_unstable(record)
    return 1 if failed else 0


def _warn_unstable(record) -> None:
    """One line when a record's timing was unstable: why, and what to do."""
    from rich.markup import escape

    from edgecomp.commands.ui import err_console
    from edgecomp.results.stability import warning

    line = warning(record.stability, artifact=record.artifact_name,
                   target=record.target) if record.stability is not None else None
    if line:
        err_console.print(f"[yellow](!)[/yellow] {escape(line)}", highlight=False, soft_wrap=True)


def _print_across_boards(records) -> None:
    """With results from several boards, the same artifacts side by side."""
    from edgecomp.commands.ui import across_boards_table, console
    from edgecomp.results.compare import across_boards

    targets, rows = across_boards([r for r in records if r.ok or r.error])
    if rows:
        console.print(across_boards_table(targets, rows))


def run_export(args) -> int:
    from edgecomp.commands.ui import console, progress_bars, shown_logs
    from edgecomp.pipeline.deploy import export_model

    with progress_bars() as progress, shown_logs("edgecomp.export.cache"):
        artifacts = export_model(_model_spec(args), _data_plan(args), _export_choices(args),
                                 args.out, progress=progress, rebuild=args.rebuild)
    for artifact in artifacts:
        share = artifact.manifest.get("integer_weight_share")
        console.print(f"{artifact.path}  {artifact.size_bytes} bytes  "
                      f"integer weights {share:.0%}  manifest {artifact.manifest_path.name}")
    return 0


def run_bench(args) -> int:
    from edgecomp.commands.ui import progress_bars
    from edgecomp.pipeline.deploy import bench
    from edgecomp.model.signature import parse_input_shapes

    with progress_bars() as progress:
        records = bench(args.artifacts, targets=_targets(args), measure=_measure_choices(args),
                        eval_spec=args.eval, reference=args.reference, seed=args.seed,
                        record=not args.no_record, tag=check_tag(args.tag),
                        command=_command(), progress=progress,
                        input_shape=parse_input_shapes(args.input_shape),
                        input_values=_input_values(args.input_values), name=args.name)
    return _finish(args, records, command="bench")


def _input_values(values: list[str]) -> dict[str, float]:
    """--input-value NAME=NUMBER options by input name."""
    import math

    chosen: dict[str, float] = {}
    for value in values:
        name, _, number = value.partition("=")
        try:
            chosen[name.strip()] = float(number)
        except ValueError:
            chosen[name.strip()] = math.nan
        if not name.strip() or not math.isfinite(chosen[name.strip()]):
            raise InputError(f"--input-value {value!r}: write it as NAME=NUMBER, e.g. "
                             "sr=16000.")
    return chosen


def run_compare(args) -> int:
    from edgecomp.commands.ui import comparison_table, console, write_json
    from edgecomp.results.compare import compare_rows
    from edgecomp.results.select import only, resolve
    from edgecomp.results.store import Store, parse_since

    since = parse_since(args.since) if args.since else None
    filters = {"model": args.model, "target": args.target, "technique": args.technique}
    with Store() as store:
        # Raw samples only for --json (the README lists them there); the table needs none.
        records = store.records(**filters, tag=check_tag(args.tag), since=since,
                                include_failed=args.failed, with_samples=args.json is not None)
        against, baseline = None, None
        if args.baseline:
            against = resolve(store, args.baseline, with_samples=False)
            baseline = [r for r in only(against.records, **filters) if r.ok]
            if not baseline:
                raise InputError(f"the baseline {against.name} holds no successful result"
                                 + (" for these filters; check --model, --target and "
                                    "--technique." if any(filters.values()) else
                                    "; name another with --baseline."))
            records = [record for record in records if record.run_id not in against.runs]
        location = store.location
    rows = compare_rows(records, history=args.all, baseline=baseline)
    if not rows:
        console.print(f"no results recorded in {location} yet; run `edgecomp deploy` first."
                      if not (args.baseline or args.tag or since or args.technique
                              or args.model or args.target)
                      else f"no results in {location} match these filters.", markup=False)
    else:
        title = f"results in {location}" + (f" against {against.name}" if against else "")
        console.print(comparison_table(rows, title=title,
                                       baseline_name=against.name if against else None))
        _print_across_boards(records)
    if args.json:
        write_json(args.json, [row.record for row in rows])
    return 0
