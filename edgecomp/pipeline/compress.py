"""The compression stage: a recipe run on the model (filled in by the plan), and
`compress_model`, what `edgecomp compress` calls.

A recipe's result is exported under the recipe's name; its pass reports travel with the
prepared model into every record (`Prepared.recipe`, a `RecipeRun`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from edgecomp.errors import InputError
from edgecomp.export.base import plain_file_name
from edgecomp.hardware.plan import Plan
from edgecomp.model.data import Dataset, load_data
from edgecomp.model.source import check_data
from edgecomp.pipeline.apply import BoardSettings
from edgecomp.pipeline.build import Prepared
from edgecomp.pipeline.request import DataSpec, ExportChoices, ModelSpec
from edgecomp.results.record import PassRun, RecipeRun
from edgecomp.vocab import Format, Precision

ProgressFn = Callable[[str, int, int], None]


def compress(prepared: Prepared, recipe_spec: Any, *, train: Dataset | None,
             progress: ProgressFn | None = None, out_dir: Path | None = None,
             loss_fn: Callable | None = None,
             train_fn: Callable | None = None) -> tuple[Prepared, list]:
    """Run a recipe (a file or name, or a parsed `Recipe`) on the model.

    The result is exported under the recipe's name.
    """
    from edgecomp.compress.base import DataContext
    from edgecomp.compress.recipe import Recipe, load_recipe, run_recipe
    from edgecomp.hashing import state_dict_sha256

    source = prepared.source
    if source.module is None:
        raise InputError(f"{source.spec} is an ONNX file; compression passes work on PyTorch "
                         "models (give the model as package.module:function or .pt2).")
    recipe = recipe_spec if isinstance(recipe_spec, Recipe) else load_recipe(recipe_spec)
    source.example_input  # noqa: B018  (refuses models with several inputs, in a sentence)
    if train is not None:
        train = check_data(source, train, what="training")
    stem = f"{source.name}.{recipe.name}"
    if out_dir is not None:
        plain_file_name(stem, out_dir=out_dir)  # files a pass writes stay inside out_dir
    context = DataContext(example_input=source.example_input, train=train, val=prepared.eval,
                          calib=prepared.calib, teacher=source.module, progress=progress,
                          out_dir=out_dir, stem=stem,
                          loss_fn=loss_fn, train_fn=train_fn)
    model, reports = run_recipe(recipe, source.module, context)
    model.eval()
    compressed = replace(source, module=model, sha256=state_dict_sha256(model.state_dict()),
                         given_sha256=source.given_sha256 or source.sha256)
    run = RecipeRun(name=recipe.name, source=recipe.source, text=recipe.text,
                    export=recipe.export.to_json(),
                    reports=tuple(PassRun(**report_json(r)) for r in reports))
    return replace(prepared, source=compressed, technique=recipe.name, recipe=run), reports


@dataclass(frozen=True)
class Training:
    """Training data and the user's own loss or loop, loaded before anything is written."""

    data: Dataset | None = None
    loss_fn: Callable | None = None
    train_fn: Callable | None = None


def load_training(train: str | None, *, loss: str | None = None,
                  train_fn: str | None = None) -> Training:
    """Load the training data and import the user's loss or training loop (`pkg.mod:fn`)."""
    from edgecomp.model.factory import import_callable

    return Training(
        data=load_data(train) if train else None,
        loss_fn=import_callable(loss, what="loss") if loss else None,
        train_fn=import_callable(train_fn, what="training function") if train_fn else None)


def fill_recipe(recipe, plan: Plan):
    """The recipe with the plan's decisions filled in where it left them open: each pass
    names the options its board's plan decides (`plan_options`), e.g. a generic `prune`
    takes the plan's pruning kind and channel multiple. A decision the user set with
    `--set` replaces the recipe's own value."""
    from edgecomp.compress.base import PASSES
    from edgecomp.hardware.plan import json_value

    passes = []
    for name, options in recipe.passes:
        options = dict(options)
        for option, decision in PASSES.get(name).plan_options.items():
            if option not in options or decision in plan.overridden:
                options[option] = json_value(getattr(plan, decision))
        passes.append((name, options))
    return replace(recipe, passes=tuple(passes))


def recipe_export_defaults(recipe) -> tuple[Precision | None, tuple[Format, ...] | None]:
    """The precision and formats a recipe exports at: its `[export]` table, else the
    precision its last pass ties the weights to (qat: int8, fp16: fp16)."""
    from edgecomp.compress.base import PASSES

    precision, formats = recipe.export.precision, recipe.export.formats
    if precision is None:
        tied = [getattr(PASSES.get(name), "export_precision", None) for name, _ in recipe.passes]
        precision = next((p for p in reversed(tied) if p is not None), None)
    return (Precision(precision) if precision is not None else None,
            tuple(Format(f) for f in formats) if formats else None)


def recipe_formats(recipe, settings: BoardSettings, user_export: ExportChoices, *,
                   has_module: bool = True) -> tuple[BoardSettings, list[str]]:
    """The board's settings with only the formats that export the recipe's precision
    (`recipe_export_defaults`), checked before any pass runs, and a sentence for each
    format left out. InputError naming the recipe, the format and what to do when the
    user named the formats or precisions and one cannot, or when no format can."""
    from edgecomp.export import formats_for, get_exporter, unsupported_reason

    precision, formats = recipe_export_defaults(recipe)
    if precision is None or user_export.precisions is not None:
        return settings, []  # the user's precisions (checked by export) or the plan's
    chosen = tuple(formats) if formats and user_export.formats is None else \
        settings.export.formats
    kept = tuple(fmt for fmt in chosen
                 if unsupported_reason(fmt, precision, has_module=has_module) is None)
    left_out = [Format(fmt).value for fmt in chosen if fmt not in kept]

    def why(fmt: str) -> str:
        exporter = get_exporter(fmt)
        offered = ", ".join(sorted(p.value for p in exporter.precisions))
        return exporter.declined.get(precision) or f"it exports {offered}"

    if left_out and (not kept or user_export.formats is not None):
        fmt = left_out[0]
        others = [f.value for f in formats_for(precision, has_module=has_module)]
        instead = (f"deploy it with --format {others[0]}" if others else
                   "choose a recipe that exports another precision")
        raise InputError(f"recipe {recipe.name} exports {precision.value}, which {fmt} "
                         f"does not ({why(fmt)}); {instead}, or give --precision to "
                         "export another one.")
    notes = [f"recipe {recipe.name} exports {precision.value}, which {fmt} does not "
             f"({why(fmt)}): its {fmt} artifacts are left out" for fmt in left_out]
    return replace(settings, export=replace(settings.export, formats=kept)), notes


def compress_stage(prepared: Prepared, settings: BoardSettings, recipe, plan: Plan | None, *,
                   training: Training, user_export: ExportChoices, out_dir: Path,
                   progress: ProgressFn | None = None) -> tuple[Prepared, BoardSettings]:
    """Run the recipe (the plan fills in its pruning kind and channel multiple), then let the
    recipe's export defaults choose the precision and formats the user left open."""
    if plan is not None:
        recipe = fill_recipe(recipe, plan)
    prepared, _reports = compress(prepared, recipe, train=training.data, progress=progress,
                                  out_dir=out_dir, loss_fn=training.loss_fn,
                                  train_fn=training.train_fn)
    precision, formats = recipe_export_defaults(recipe)
    changes: dict[str, Any] = {}
    if precision is not None and user_export.precisions is None:
        changes["precisions"] = (precision,)
    if formats and user_export.formats is None:
        changes["formats"] = tuple(f.value for f in formats)
    return prepared, replace(settings, export=replace(settings.export, **changes))


@dataclass(frozen=True)
class CompressRequest:
    """What `compress_model` needs: the model, a recipe, where to write, and the data."""

    recipe: Any  # a recipe file or name, or a parsed `Recipe` (e.g. from --pass options)
    out_dir: Path
    model: ModelSpec = ModelSpec()  # the demo when left out
    train: str | None = None  # training data for passes that fine-tune (demo: the digits)
    eval: str | None = None
    calib: str | None = None  # calibration data for quantization passes
    seed: int = 0
    loss: str | None = None  # "pkg.mod:fn": loss(outputs, labels) for the training loop
    train_fn: str | None = None  # "pkg.mod:fn": train(model, ctx, epochs) -> model


@dataclass(frozen=True)
class Compressed:
    """What `compress_model` wrote: a torch.export program per exported model (one per exit
    of an early-exit network) and the passes' reports as JSON beside them."""

    programs: tuple[Path, ...]
    report: Path
    reports: tuple[Any, ...]  # edgecomp.compress.base.PassReport, in pass order


def compress_model(request: CompressRequest, *,
                   progress: ProgressFn | None = None) -> Compressed:
    """`edgecomp compress`: run a recipe on a model and save the result as `.pt2` programs
    (which `edgecomp export` and `deploy` accept) with the passes' reports. Everything is
    loaded and checked before a pass runs; nothing is written when the result cannot be
    captured by torch.export."""
    import torch

    from edgecomp.atomic import atomic_path, atomic_write_text, strict_json
    from edgecomp.errors import ExportError
    from edgecomp.model.demo import demo_model
    from edgecomp.model.load import load_model
    from edgecomp.pipeline.build import exported_modules, prepare

    demo = request.model.is_demo
    training = load_training(request.train or ("digits:train" if demo else None),
                             loss=request.loss, train_fn=request.train_fn)
    if demo:
        source = demo_model(progress=progress)
    else:
        source = load_model(request.model.spec, weights=request.model.weights,
                            input_shape=request.model.input_shape, data=training.data)
    if request.model.name:
        source = replace(source, name=request.model.name)
    data = DataSpec(calib=request.calib or ("digits:train" if demo else None),
                    eval=request.eval or ("digits:val" if demo else None), seed=request.seed)
    prepared = prepare(source, data, needs_calib=False)
    result, reports = compress(prepared, request.recipe, train=training.data,
                               progress=progress, out_dir=request.out_dir,
                               loss_fn=training.loss_fn, train_fn=training.train_fn)
    programs = []
    for technique, module in exported_modules(result):
        try:
            programs.append((request.out_dir / f"{source.name}.{technique}.pt2",
                             torch.export.export(module.eval(), (source.example_input,))))
        except Exception as exc:  # torch.export raises many types; all mean "not exportable"
            raise ExportError(f"torch.export could not capture the compressed {technique} "
                              f"model ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                              "nothing was written. Run with --debug for the trace.") from exc
    request.out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for path, program in programs:
        with atomic_path(path) as tmp:
            torch.export.save(program, str(tmp))
        saved.append(path)
    report_path = request.out_dir / f"{source.name}.{result.technique}.report.json"
    atomic_write_text(report_path, strict_json([report_json(r) for r in reports], indent=2,
                                               default=str))
    return Compressed(programs=tuple(saved), report=report_path, reports=tuple(reports))


def report_json(report) -> dict[str, Any]:
    """A pass report as its JSON object (in the report file and in records)."""
    return {"name": report.name, "params": report.params, "metrics": report.metrics,
            "notes": report.notes, "files": report.files}
