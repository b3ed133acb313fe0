"""A working plugin, used to check that disabling a plugin removes its components."""
import molplat
from molplat import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_representations():
    return [ComponentSpec(name="toy_cloud", kind="representation", summary="point cloud under another name",
                          factory="molplat.representations.point_cloud:PointCloud",
                          settings=(Setting("max_atomic_number", "int", 100),))]
