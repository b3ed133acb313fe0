"""The roughness index (ROGI) of a property landscape, on learned embeddings and on input descriptors."""
