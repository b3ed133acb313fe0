"""A plugin written for a molplat plugin API this core does not provide."""
import molplat
from molplat import ComponentSpec

MOLPLAT_API = ">=0.1,<1"


@molplat.hookimpl
def molplat_models():
    return [ComponentSpec(name="old_model", kind="model", factory="molplat_oldapi.model:Old")]
