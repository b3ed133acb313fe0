"""Contract checks, one module per component kind; each raises ConformanceError with a fix.

They are plain functions so they can be called outside pytest as well.
"""
