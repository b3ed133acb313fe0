"""Factories that raise when built, as a component needing absent hardware would."""


class RaisingModel:
    def __init__(self, n_outputs=1, width=8):
        raise ValueError(f"width {width} needs an accelerator this machine lacks")


class RaisingSearcher:
    def __init__(self):
        raise RuntimeError("the search service is not configured")


class RaisingSimulator:
    def __init__(self):
        raise ImportError("simulation engine library is not installed")
