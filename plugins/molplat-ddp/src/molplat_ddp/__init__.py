"""molplat-ddp: the ``ddp`` trainer backend (Lightning's DDP in several processes, CPUs or GPUs)."""
