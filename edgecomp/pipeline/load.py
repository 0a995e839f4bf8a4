"""Load what a request names before anything is built: the model (with the demo's data
filled in), the recipe, and the facts the planner and the int8 search read."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from edgecomp.model.facts import ModelFacts
from edgecomp.model.source import ModelSource
from edgecomp.pipeline.build import DataSets, read_data
from edgecomp.pipeline.request import DataSpec, DeployRequest, ModelSpec

ProgressFn = Callable[[str, int, int], None]


def source_facts(source: ModelSource) -> ModelFacts | None:
    """What the planner and the int8 search know about the model (None for an artifact)."""
    from edgecomp.model.facts import facts_from_onnx, model_facts

    if source.module is not None:
        return model_facts(source.module, source.example_inputs, name=source.name)
    if source.onnx_path is not None:
        return facts_from_onnx(source.onnx_path, name=source.name)
    return None


def data_for(request: DeployRequest) -> DataSpec:
    """The demo's data is built in: real digits, named in every record."""
    if not request.model.is_demo:
        return request.data
    return replace(request.data, calib=request.data.calib or "digits:train",
                   eval=request.data.eval or "digits:val")


def load_recipe(spec: str | None):
    """Load and validate the recipe before anything is written."""
    if spec is None:
        return None
    from edgecomp.compress.recipe import load_recipe as load

    return load(spec)


def load_source(model: ModelSpec, data: DataSpec, *, progress: ProgressFn | None = None,
                sets: DataSets | None = None) -> ModelSource:
    """Load the model; the data's sample shape helps find a factory's input shape (`sets`:
    the data read already, else read here)."""
    from edgecomp.model.demo import demo_model
    from edgecomp.model.load import load_model

    if model.is_demo:
        return _named(demo_model(progress=progress), model.name)
    sets = sets if sets is not None else read_data(data)
    return _named(load_model(model.spec, weights=model.weights, input_shape=model.input_shape,
                             data=sets.eval or sets.calib), model.name)


def _named(source: ModelSource, name: str | None) -> ModelSource:
    """The source under the user's `--name`, where they gave one."""
    return replace(source, name=name) if name else source
