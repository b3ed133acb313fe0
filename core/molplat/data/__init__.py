"""The dataset contract and the split logic every dataset shares."""
from molplat.data.dataset import Dataset, seeded_split

__all__ = ["Dataset", "seeded_split"]
