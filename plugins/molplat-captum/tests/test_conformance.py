"""The five explainers pass the molplat-sdk conformance suite on the SDK's toy run (EMT clusters and crystals)."""
from molplat_sdk import PluginConformance

SMALL = {"num_structures": 2, "num_drawings": 1}


class TestCaptumConformance(PluginConformance):
    plugin = "molplat-captum"
    settings = {"saliency": SMALL, "input_x_gradient": SMALL, "cam": SMALL, "grad_cam": SMALL,
                "integrated_gradients": {**SMALL, "n_steps": 16}}
