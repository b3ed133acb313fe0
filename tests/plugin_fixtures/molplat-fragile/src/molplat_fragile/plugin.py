"""Components whose factory cannot be imported or raises when built, and event hooks that raise.

Which hooks raise is chosen by MOLPLAT_FRAGILE_HOOKS (comma-separated: run_started,
stage_finished, run_finished), so one installed fixture serves every isolation test.
"""
import os

import molplat
from molplat import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"


def _spec(name, kind, factory, **extra):
    return ComponentSpec(name=name, kind=kind, factory=factory, summary=f"fixture {kind} that breaks", **extra)


@molplat.hookimpl
def molplat_models():
    width = (Setting("width", "int", 8, "width", minimum=1, maximum=64),)
    return [
        _spec("fragile_import", "model", "molplat_fragile.missing_module:Model", accepts=("adjacency_list",),
              outputs=("property",)),
        _spec("fragile_build", "model", "molplat_fragile.components:RaisingModel", accepts=("adjacency_list",),
              outputs=("property",), settings=width),
    ]


@molplat.hookimpl
def molplat_searchers():
    return [_spec("fragile_search", "searcher", "molplat_fragile.components:RaisingSearcher")]


@molplat.hookimpl
def molplat_explainers():
    return [_spec("fragile_explain", "explainer", "molplat_fragile.missing_module:Explainer")]


@molplat.hookimpl
def molplat_simulators():
    return [_spec("fragile_simulate", "simulator", "molplat_fragile.components:RaisingSimulator")]


def _maybe_raise(hook):
    if hook in os.environ.get("MOLPLAT_FRAGILE_HOOKS", "").split(","):
        raise RuntimeError(f"fixture tracker lost its connection in {hook}")


@molplat.hookimpl
def molplat_run_started(run_dir, pipeline):
    _maybe_raise("run_started")


@molplat.hookimpl
def molplat_stage_finished(run_dir, stage, result):
    _maybe_raise("stage_finished")


@molplat.hookimpl
def molplat_run_finished(run_dir, summary):
    _maybe_raise("run_finished")
