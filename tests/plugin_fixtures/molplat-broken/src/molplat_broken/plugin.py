"""A plugin whose import fails, as when a dependency is missing."""
import molplat_missing_dependency  # noqa: F401
