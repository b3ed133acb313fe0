"""molplat-md17: MD17 / revised MD17 trajectories as a molplat energy-and-forces dataset, and GFN2-xTB
trajectories generated the same way when no file is given."""

__version__ = "0.1.0"
