"""Both components pass the molplat-sdk conformance suite: dgl_graph (float64 collation, batches
equal to single items, neighbours equal to a brute-force search, periodic images included) and
egnn_dgl on both representations it accepts (shapes, symmetries, forces, persistence)."""
from molplat_sdk import PluginConformance


class TestDGLConformance(PluginConformance):
    plugin = "molplat-dgl"
    settings = {
        "egnn_dgl": {"hidden_channels": 16, "num_layers": 2, "num_radial": 8, "cutoff": 4.0, "attention": True},
        "dgl_graph": {"cutoff": 4.0},
    }
