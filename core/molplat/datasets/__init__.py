"""The core's built-in datasets.

Each lives in its own module, named by its spec's lazy factory in ``molplat.builtin``,
so listing components imports none of them (nor ASE).
"""
