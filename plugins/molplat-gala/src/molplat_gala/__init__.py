"""Gala, geometric algebra attention (Spellings, arXiv:2110.02393), as a molplat model plugin."""
