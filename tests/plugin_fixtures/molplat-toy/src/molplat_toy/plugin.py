"""A working plugin, used to check that disabling a plugin removes its components."""
import molplat
from molplat import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_representations():
    return [ComponentSpec(name="toy_cloud", kind="representation", summary="point cloud under another name",
                          factory="molplat.representations.point_cloud:PointCloud",
                          settings=(Setting("max_atomic_number", "int", 100),))]


@molplat.hookimpl
def molplat_datasets():
    return [ComponentSpec(name="toy_emt", kind="dataset", summary="rattled Cu cells with EMT energies and forces",
                          factory="molplat_toy.emt:EMTCopper",
                          settings=(Setting("count", "int", 40, minimum=6, maximum=1000),
                                    Setting("seed", "int", 0, minimum=0, maximum=2**31),
                                    Setting("poison", "str", "", choices=("", "nan", "heavy"))))]


def _record(event: str, **fields) -> None:
    """Append the event to the file named by MOLPLAT_TOY_EVENTS, as a tracker plugin would."""
    import json
    import os

    path = os.environ.get("MOLPLAT_TOY_EVENTS")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"event": event, **fields}) + "\n")


@molplat.hookimpl
def molplat_run_started(run_dir, pipeline):
    _record("run_started", run_dir=run_dir, model=pipeline["model"]["name"])


@molplat.hookimpl
def molplat_stage_finished(run_dir, stage, result):
    _record("stage_finished", stage=stage, keys=sorted(result))


@molplat.hookimpl
def molplat_run_finished(run_dir, summary):
    _record("run_finished", test_mae=summary["test"]["mae"])
