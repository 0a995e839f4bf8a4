"""`edgecomp compress`: run compression passes or a recipe and save the smaller model."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

from edgecomp.atomic import atomic_path, atomic_write_text, strict_json
from edgecomp.errors import ExportError, InputError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compress", help="compress a model with a recipe or passes; writes a .pt2 and a report",
        description="Run compression passes on a model. The result is saved as a torch.export "
                    "program (.pt2) that `edgecomp export` and `deploy` accept.")
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="package.module:function, a .pt2 file, or nothing for the demo")
    parser.add_argument("--weights", type=Path)
    from edgecomp.commands.flow_cmd import NAME_HELP, add_input_shape_arg

    add_input_shape_arg(parser)
    parser.add_argument("--name", help=NAME_HELP)
    parser.add_argument("--recipe", help="recipe file or name (`edgecomp compress --list` shows them)")
    parser.add_argument("--pass", dest="passes", action="append", metavar="'NAME key=value ...'",
                        help="a pass and its options, repeatable, e.g. "
                             "--pass 'prune.magnitude sparsity=0.9'")
    parser.add_argument("--data", help="training data for passes that fine-tune (.npz or "
                                       "image folder; the demo uses digits)")
    parser.add_argument("--eval", help="evaluation data")
    parser.add_argument("--calib", help="calibration data for quantization passes")
    parser.add_argument("--seed", type=int, default=0)
    add_training_args(parser)
    parser.add_argument("-o", "--out", type=Path, help="output directory (required to compress)")
    parser.add_argument("--list", action="store_true", help="list the available passes and recipes")
    parser.set_defaults(func=run_compress)


def add_training_args(parser) -> None:
    """Flags for tasks the built-in classification loop does not fit."""
    parser.add_argument("--loss", metavar="MODULE:FUNCTION",
                        help="loss(outputs, labels) for the built-in training loop")
    parser.add_argument("--train-fn", metavar="MODULE:FUNCTION",
                        help="train(model, ctx, epochs) -> model, replacing the built-in loop "
                             "in every pass that fine-tunes (ctx holds train/val data, teacher, "
                             "seed)")


def training_functions(args) -> dict:
    """The user's loss and training function, imported, as keyword arguments for compress."""
    from edgecomp.model.factory import import_callable

    return {"loss_fn": import_callable(args.loss, what="loss") if args.loss else None,
            "train_fn": import_callable(args.train_fn, what="training function")
            if args.train_fn else None}


def parse_pass(text: str) -> tuple[str, dict]:
    """'prune.magnitude sparsity=0.9 scope="global"' to (name, options); values are TOML."""
    if not text.split():
        raise InputError("--pass needs a pass name, e.g. --pass 'prune.magnitude sparsity=0.9'.")
    name, *pairs = text.split()
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"--pass {text!r}: options are key=value pairs; {pair!r} is not.")
        try:
            options[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            options[key] = value  # a bare word such as scope=global
    return name, options


def passes_recipe_text(passes: list[str]) -> str:
    """A recipe equivalent to --pass flags, so CLI runs are stored like recipe runs."""
    lines = ['name = "cli"']
    for text in passes:
        name, options = parse_pass(text)
        lines += ["", "[[pass]]", f"name = {json.dumps(name)}"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def run_compress(args) -> int:
    import torch

    from edgecomp.commands.ui import console, progress_bars
    from edgecomp.compress.recipe import load_all_passes, parse_recipe
    from edgecomp.model.data import load_data
    from edgecomp.pipeline.build import DataPlan, compress, exported_modules, prepare
    from edgecomp.model.demo import demo_model
    from edgecomp.model.load import load_model
    from edgecomp.model.signature import parse_input_shapes
    from edgecomp.model.source import check_model_name

    if args.list:
        from edgecomp.compress.base import PASSES

        load_all_passes()
        for name in sorted(PASSES):
            doc = (PASSES[name].__doc__ or "").strip().splitlines()
            console.print(f"{name:22} {doc[0] if doc else ''}")
        from edgecomp.compress.recipe import known_recipes

        console.print("\nrecipes (--recipe NAME):")
        for name, path in sorted(known_recipes().items()):
            console.print(f"{name:22} {path}")
        return 0
    if args.out is None:
        raise InputError("give an output directory with -o/--out.")
    if args.name is not None:
        check_model_name(args.name)
    if bool(args.recipe) == bool(args.passes):
        raise InputError("give either --recipe or one or more --pass options.")
    recipe = args.recipe
    if args.passes:  # validated here, before any model is loaded or trained
        recipe = parse_recipe(passes_recipe_text(args.passes),
                              source="--pass options (in order)", default_name="cli")
    demo = args.model in (None, "demo")
    train = load_data(args.data or ("digits:train" if demo else None)) \
        if (args.data or demo) else None
    with progress_bars() as progress:
        if demo:
            source = demo_model(progress=progress)
        else:
            source = load_model(args.model, weights=args.weights,
                                input_shape=parse_input_shapes(args.input_shape),
                                data=train)
        if args.name:
            source = dataclasses.replace(source, name=args.name)
        data = DataPlan(calib=args.calib or ("digits:train" if demo else None),
                        eval=args.eval or ("digits:val" if demo else None), seed=args.seed)
        prepared = prepare(source, data, needs_calib=False)
        result, reports = compress(prepared, recipe, train=train, progress=progress,
                                   out_dir=args.out, **training_functions(args))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{source.name}.{result.technique}"
    programs = []
    for technique, module in exported_modules(result):
        try:
            programs.append((args.out / f"{source.name}.{technique}.pt2",
                             torch.export.export(module.eval(), (source.example_input,))))
        except Exception as exc:  # torch.export raises many types; all mean "not exportable"
            raise ExportError(f"torch.export could not capture the compressed {technique} "
                              f"model ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                              "nothing was written. Run with --debug for the trace.") from exc
    saved = []
    for path, program in programs:
        with atomic_path(path) as tmp:
            torch.export.save(program, str(tmp))
        saved.append(path)
    report_path = args.out / f"{stem}.report.json"
    atomic_write_text(report_path, strict_json([_report_json(r) for r in reports], indent=2,
                                               default=str))
    for report in reports:
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
    console.print(f"wrote {', '.join(str(p) for p in saved)} and {report_path}")
    return 0


def _report_json(report) -> dict:
    return {"name": report.name, "params": report.params, "metrics": report.metrics,
            "notes": report.notes, "files": report.files}
