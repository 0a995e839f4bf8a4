"""`edgecomp deploy` (the whole flow on one board or a fleet) and `edgecomp export`."""

from __future__ import annotations

from edgecomp.commands import args as shared


def add_parser(subparsers) -> None:
    from edgecomp.quantize.target import AgreementTarget

    deploy = subparsers.add_parser(
        "deploy", help="compress, export, verify, measure and record a model on a target",
        description="Run the whole flow. With no MODEL, the built-in demo CNN on scikit-learn's "
                    "digits is trained once (cached) and deployed.")
    shared.add_model_args(deploy, optional=True)
    shared.add_data_args(deploy)
    shared.add_export_args(deploy)
    shared.add_measure_args(deploy)
    deploy.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a plan decision (see `plan`)")
    deploy.add_argument("--recipe", help="compress with this recipe (file or name) first")
    deploy.add_argument("--train", help="training data for recipes that fine-tune")
    shared.add_training_args(deploy)
    deploy.add_argument("--no-baseline", action="store_true",
                        help="with --recipe, skip the uncompressed fp32 baseline artifacts")
    shared.add_output_arg(deploy, "-o", "--out", folder=True, default=None,
                          help="artifact directory (default ./edgecomp-out/<model>)")
    shared.add_output_arg(deploy, "--json", folder=False,
                          help="write the result objects to this JSON file")
    deploy.add_argument("--no-record", action="store_true",
                        help="do not add the results to the store")
    shared.add_wide_arg(deploy)
    target = deploy.add_argument_group(
        "accuracy-aware int8", "With --eval data, int8 candidates (calibrations, then layers "
        "kept in float) are run in the target's runtime until one meets the target; an "
        "artifact below it is flagged.")
    target.add_argument("--min-cosine", type=float, default=AgreementTarget.min_cosine,
                        help="mean output cosine to the float model (default "
                             f"{AgreementTarget.min_cosine:g})")
    target.add_argument("--max-top1-drop", type=float, default=AgreementTarget.max_top1_drop,
                        help="top-1 drop in points, with labelled data (default "
                             f"{AgreementTarget.max_top1_drop:g})")
    target.add_argument("--min-agreement", type=float, metavar="PERCENT",
                        help="share of samples making the float model's call (top class, or "
                        "the side of 0.5 for one probability); also makes a miss fail")
    target.add_argument("--require-target", action="store_true",
                        help="exit with status 3 when an artifact is below the target")
    target.add_argument("--no-search", action="store_true",
                        help="export int8 with the plan's scheme only")
    deploy.set_defaults(func=run_deploy)

    export = subparsers.add_parser("export", help="export a model to LiteRT or ONNX")
    shared.add_model_args(export, optional=False)
    shared.add_data_args(export)
    shared.add_export_args(export)
    shared.add_output_arg(export, "-o", "--out", folder=True, required=True,
                          help="artifact directory")
    export.set_defaults(func=run_export)


def run_deploy(args) -> int:
    from rich.markup import escape

    from edgecomp.commands.outcome import measured_run
    from edgecomp.commands.ui import console, print_plan, progress_bars, shown_logs
    from edgecomp.hardware.plan import parse_overrides
    from edgecomp.pipeline.deploy import deploy
    from edgecomp.pipeline.request import DeployRequest
    from edgecomp.results.flags import FlagKind

    overrides = parse_overrides(args.overrides)
    if args.formats and len(set(args.formats)) == 1:
        # One format asked for: plan the runtime, delegate and precision for that format.
        overrides.setdefault("format", parse_overrides([f"format={args.formats[0]}"])["format"])
    targets = shared.targets(args)
    request = DeployRequest(
        model=shared.model_spec(args), target=targets[0], targets=tuple(targets),
        data=shared.data_plan(args), export=shared.export_choices(args),
        measure=shared.measure_choices(args), overrides=overrides,
        recipe=args.recipe, train=args.train, loss=args.loss, train_fn=args.train_fn,
        baseline=not args.no_baseline, out_dir=args.out, record=not args.no_record,
        rebuild=args.rebuild, command=shared.command_line(),
        agreement=_agreement_target(args), search=not args.no_search,
        tag=args.tag)

    def on_plan(plan, target: str) -> None:
        if len(targets) > 1:
            console.print(f"[bold]{escape(target)}[/bold]")
        print_plan(plan, wide=args.wide)

    def measure():
        with progress_bars() as progress, shown_logs("edgecomp.export.cache"):
            return deploy(request, progress=progress, on_plan=on_plan)

    records, status = measured_run(measure, command="deploy", recorded=not args.no_record,
                                   json_path=args.json, wide=args.wide)
    below = [r for r in records if any(f.kind is FlagKind.BELOW_TARGET for f in r.flags)]
    if status == 0 and below and (args.require_target or args.min_agreement is not None):
        return 3
    return status


def _agreement_target(args):
    from edgecomp.quantize.target import AgreementTarget

    return AgreementTarget(min_cosine=args.min_cosine, max_top1_drop=args.max_top1_drop,
                           min_decision=args.min_agreement)


def run_export(args) -> int:
    from edgecomp.commands.ui import console, progress_bars, shown_logs
    from edgecomp.pipeline.deploy import export_model

    with progress_bars() as progress, shown_logs("edgecomp.export.cache"):
        artifacts = export_model(shared.model_spec(args), shared.data_plan(args),
                                 shared.export_choices(args), args.out, progress=progress,
                                 rebuild=args.rebuild)
    for artifact in artifacts:
        share = artifact.manifest.integer_weight_share
        console.print(f"{artifact.path}  {artifact.size_bytes} bytes  "
                      f"integer weights {share:.0%}  manifest {artifact.manifest_path.name}")
    return 0
