"""Both searchers pass the molplat-sdk conformance suite: a real DeepHyper search on the SDK's toy run."""
from molplat_sdk import PluginConformance

SPACE = {"trainer.lr": {"low": 1e-3, "high": 1e-2, "log": True}, "model.hidden_channels": [4, 8]}


class TestDeepHyperConformance(PluginConformance):
    plugin = "molplat-deephyper"
    settings = {"cbo": {"space": SPACE, "max_evals": 2, "initial_points": 1},
                "random": {"space": SPACE, "max_evals": 2}}
