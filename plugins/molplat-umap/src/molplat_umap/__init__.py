"""UMAP maps of the per-structure embeddings of a trained molplat model."""
