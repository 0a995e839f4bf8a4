"""`edgecomp bench`: measure artifacts that already exist on one board or several."""

from __future__ import annotations

from pathlib import Path

from edgecomp.commands import args as shared


def add_parser(subparsers) -> None:
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
    shared.add_input_shape_arg(bench)
    bench.add_argument("--input-value", dest="input_values", action="append", default=[],
                       metavar="NAME=NUMBER", help="without --eval: feed this constant to an "
                       "input when timing (e.g. sr=16000); else floats are random in [0, 1) "
                       "and integers 0")
    bench.add_argument("--name", help="the model's name in the results (default: each "
                       "artifact's manifest's, else its file's stem)")
    shared.add_measure_args(bench)
    shared.add_output_arg(bench, "--json", folder=False,
                          help="write the result objects to this JSON file")
    bench.add_argument("--no-record", action="store_true")
    shared.add_wide_arg(bench)
    bench.set_defaults(func=run_bench)


def run_bench(args) -> int:
    from edgecomp.commands.outcome import measured_run
    from edgecomp.commands.ui import progress_bars
    from edgecomp.model.signature import parse_input_shapes
    from edgecomp.pipeline.bench import bench

    def measure():
        with progress_bars() as progress:
            return bench(args.artifacts, targets=shared.targets(args),
                         measure=shared.measure_choices(args), eval_spec=args.eval,
                         reference=args.reference, seed=args.seed, record=not args.no_record,
                         tag=args.tag, command=shared.command_line(),
                         progress=progress, input_shape=parse_input_shapes(args.input_shape),
                         input_values=shared.input_values(args.input_values), name=args.name)

    return measured_run(measure, command="bench", recorded=not args.no_record,
                        json_path=args.json, wide=args.wide)[1]
