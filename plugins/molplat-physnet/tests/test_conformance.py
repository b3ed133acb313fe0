"""PhysNet passes the molplat-sdk conformance suite (shapes, symmetries, forces, persistence).

The suite's structures include periodic crystals, so it runs with the default settings
(electrostatics off, which is molecules only); dispersion works on crystals and is on here.
test_physnet.py checks electrostatics on molecules the same way.
"""
from molplat_sdk import PluginConformance

SMALL = {"hidden_channels": 16, "num_rbf": 16, "num_modules": 2, "num_residual_interaction": 1,
         "num_residual_atomic": 1, "num_residual_output": 1, "cutoff": 4.0}


class TestPhysNetConformance(PluginConformance):
    plugin = "molplat-physnet"
    settings = {"physnet": {**SMALL, "dispersion": True}}
