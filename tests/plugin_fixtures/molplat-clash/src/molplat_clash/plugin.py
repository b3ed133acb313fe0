"""A plugin that registers a model name another plugin (molplat-cgcnn) already uses."""
import molplat
from molplat import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"


@molplat.hookimpl
def molplat_models():
    return [ComponentSpec(name="cgcnn", kind="model", summary="another crystal graph network under the same name",
                          factory="molplat_cgcnn.model:CGCNN", accepts=("adjacency_list",),
                          outputs=("property", "energy", "forces"),
                          settings=(Setting("cutoff", "float", 5.0, "radius in Å", minimum=0.1, maximum=20.0),))]
