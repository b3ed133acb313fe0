"""DGL for molplat: representation ``dgl_graph`` (``molplat_dgl.representation``) and model
``egnn_dgl`` (``molplat_dgl.model``), both imported lazily by the core. DGL itself is imported
only through ``molplat_dgl._dgl.import_dgl``."""
__version__ = "0.1.0"
