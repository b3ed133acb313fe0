"""A plugin that registers a component name the core already owns."""
import molplat
from molplat import ComponentSpec

MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_representations():
    return [ComponentSpec(name="adjacency_list", kind="representation",
                          factory="molplat.representations.point_cloud:PointCloud")]
