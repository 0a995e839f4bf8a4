"""The library's entry points and the stages they are made of.

    deploy(request) -> records     plan → apply the plan → prepare → compress → export
                                   → measure on the board → record   (pipeline.deploy)
    bench(paths) -> records        measure artifacts that exist      (pipeline.bench)
    export_model(...) -> artifacts export without a board           (pipeline.deploy)
    compress_model(request)        a recipe run, saved as .pt2       (pipeline.compress)

The requests are typed and frozen (`pipeline.request`); each stage is a function on frozen
values a library user can call alone: `plan_stage`/`apply_plan` (pipeline.apply),
`prepare`/`export_all` (pipeline.build), `measure_on` (pipeline.measure: the measuring
steps, every failure on the board a failed record), `record_stage` (pipeline.record: a
store that fails after measuring keeps the run in the spool and raises `RunKept`).
"""
