"""DeepHyper searchers for molplat (see plugin.py)."""
