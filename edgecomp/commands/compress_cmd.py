"""`edgecomp compress`: run compression passes or a recipe and save the smaller model."""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path

from edgecomp.errors import InputError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compress", help="compress a model with a recipe or passes; writes a .pt2 and a report",
        description="Run compression passes on a model. The result is saved as a torch.export "
                    "program (.pt2) that `edgecomp export` and `deploy` accept.")
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="package.module:function, a .pt2 file, or nothing for the demo")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--input-shape")
    parser.add_argument("--recipe", help="recipe file or name (see recipes/)")
    parser.add_argument("--pass", dest="passes", action="append", metavar="'NAME key=value ...'",
                        help="a pass and its options, repeatable, e.g. "
                             "--pass 'prune.magnitude sparsity=0.9'")
    parser.add_argument("--data", help="training data for passes that fine-tune (.npz or "
                                       "image folder; the demo uses digits)")
    parser.add_argument("--eval", help="evaluation data")
    parser.add_argument("--calib", help="calibration data for quantization passes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--list", action="store_true", help="list the available passes")
    parser.set_defaults(func=run_compress)


def parse_pass(text: str) -> tuple[str, dict]:
    """'prune.magnitude sparsity=0.9 scope="global"' to (name, options); values are TOML."""
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
    from edgecomp.compress.recipe import load_all_passes
    from edgecomp.data import load_data
    from edgecomp.pipeline import DataPlan, compress, exported_modules, prepare
    from edgecomp.sources import demo_model, load_model, parse_shape

    if args.list:
        from edgecomp.compress.base import PASSES

        load_all_passes()
        for name in sorted(PASSES):
            doc = (PASSES[name].__doc__ or "").strip().splitlines()
            console.print(f"{name:22} {doc[0] if doc else ''}")
        return 0
    if bool(args.recipe) == bool(args.passes):
        raise InputError("give either --recipe or one or more --pass options.")
    recipe = args.recipe
    if args.passes:
        scratch = Path(tempfile.mkdtemp(prefix="edgecomp-recipe-"))
        recipe_path = scratch / "cli.toml"
        recipe_path.write_text(passes_recipe_text(args.passes))
        recipe = str(recipe_path)
    demo = args.model in (None, "demo")
    train = load_data(args.data or ("digits:train" if demo else None)) \
        if (args.data or demo) else None
    with progress_bars() as progress:
        if demo:
            source = demo_model(progress=progress)
        else:
            source = load_model(args.model, weights=args.weights,
                                input_shape=parse_shape(args.input_shape)
                                if args.input_shape else None,
                                sample_shape=train.sample_shape if train else None)
        data = DataPlan(calib=args.calib or ("digits:train" if demo else None),
                        eval=args.eval or ("digits:val" if demo else None), seed=args.seed)
        prepared = prepare(source, data, needs_calib=False)
        result, reports = compress(prepared, recipe, train=train, progress=progress,
                                   out_dir=args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{source.name}.{result.technique}"
    saved = []
    for technique, module in exported_modules(result):
        path = args.out / f"{source.name}.{technique}.pt2"
        program = torch.export.export(module.eval(), (source.example_input,))
        torch.export.save(program, str(path))
        saved.append(path)
    report_path = args.out / f"{stem}.report.json"
    report_path.write_text(json.dumps([_report_json(r) for r in reports], indent=2,
                                      default=str))
    for report in reports:
        console.print(f"[bold]{report.name}[/bold] {report.params}")
        for key, value in report.metrics.items():
            if not isinstance(value, (dict, list)):
                console.print(f"  {key}: {value}")
        for note in report.notes:
            console.print(f"  note: {note}")
    for report in reports:
        for kind, path in report.files.items():
            console.print(f"{kind}: {path} ({Path(path).stat().st_size} bytes)")
    console.print(f"wrote {', '.join(str(p) for p in saved)} and {report_path}")
    return 0


def _report_json(report) -> dict:
    return {"name": report.name, "params": report.params, "metrics": report.metrics,
            "notes": report.notes, "files": report.files}
