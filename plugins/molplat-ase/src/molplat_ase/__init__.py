"""ASE molecular dynamics and relaxation with trained molplat models (the simulator kind)."""
