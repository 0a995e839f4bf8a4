"""`edgecomp compress`: run compression passes or a recipe and save the smaller model."""

from __future__ import annotations

from pathlib import Path

from edgecomp.commands import args as shared
from edgecomp.errors import InputError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compress", help="compress a model with a recipe or passes; writes a .pt2 and a report",
        description="Run compression passes on a model. The result is saved as a torch.export "
                    "program (.pt2) that `edgecomp export` and `deploy` accept.")
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="package.module:function, a .pt2 file, or nothing for the demo")
    parser.add_argument("--weights", type=Path)
    shared.add_input_shape_arg(parser)
    parser.add_argument("--name", help=shared.NAME_HELP)
    parser.add_argument("--recipe", help="recipe file or name (`edgecomp compress --list` shows them)")
    parser.add_argument("--pass", dest="passes", action="append", metavar="'NAME key=value ...'",
                        help="a pass and its options, repeatable, e.g. "
                             "--pass 'prune.magnitude sparsity=0.9'")
    parser.add_argument("--data", help="training data for passes that fine-tune (.npz or "
                                       "image folder; the demo uses digits)")
    parser.add_argument("--eval", help="evaluation data")
    parser.add_argument("--calib", help="calibration data for quantization passes")
    parser.add_argument("--seed", type=int, default=0)
    shared.add_training_args(parser)
    shared.add_output_arg(parser, "-o", "--out", folder=True,
                          help="output directory (required to compress)")
    parser.add_argument("--list", action="store_true", help="list the available passes and recipes")
    parser.set_defaults(func=run_compress)


def run_compress(args) -> int:
    from edgecomp.commands.ui import console, progress_bars
    from edgecomp.compress.recipe import recipe_from_passes
    from edgecomp.pipeline.compress import CompressRequest, compress_model

    if args.list:
        return _list_passes_and_recipes()
    if args.out is None:
        raise InputError("give an output directory with -o/--out.")
    model = shared.model_spec(args)  # refuses a bad --name before anything runs
    if bool(args.recipe) == bool(args.passes):
        raise InputError("give either --recipe or one or more --pass options.")
    # --pass options are checked here, before any model is loaded or trained.
    recipe = recipe_from_passes(args.passes) if args.passes else args.recipe
    request = CompressRequest(recipe=recipe, out_dir=args.out, model=model, train=args.data,
                              eval=args.eval, calib=args.calib, seed=args.seed,
                              loss=args.loss, train_fn=args.train_fn)
    with progress_bars() as progress:
        done = compress_model(request, progress=progress)
    for report in done.reports:
        console.print(f"[bold]{report.name}[/bold] {report.params}")
        for key, value in report.metrics.items():
            if isinstance(value, list) and len(value) == 2 and \
                    all(isinstance(v, (int, float)) for v in value):
                console.print(f"  {key}: {value[0]} → {value[1]}")  # before → after
            elif not isinstance(value, (dict, list)):
                console.print(f"  {key}: {value}")
        for note in report.notes:
            console.print(f"  note: {note}")
        for kind, path in report.files.items():
            console.print(f"{kind}: {path} ({Path(path).stat().st_size} bytes)")
    console.print(f"wrote {', '.join(str(p) for p in done.programs)} and {done.report}")
    return 0


def _list_passes_and_recipes() -> int:
    from edgecomp.commands.ui import console
    from edgecomp.compress.base import PASSES
    from edgecomp.compress.recipe import known_recipes, load_all_passes

    load_all_passes()
    for name in sorted(PASSES):
        doc = (PASSES[name].__doc__ or "").strip().splitlines()
        console.print(f"{name:22} {doc[0] if doc else ''}")
    console.print("\nrecipes (--recipe NAME):")
    for name, path in sorted(known_recipes().items()):
        console.print(f"{name:22} {path}")
    return 0
