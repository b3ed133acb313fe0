"""molplat-tensorboard: records molplat runs as TensorBoard event files in RUN/tensorboard."""
