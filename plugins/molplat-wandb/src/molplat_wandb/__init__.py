"""molplat-wandb: records molplat runs as offline Weights & Biases runs in RUN/wandb."""
