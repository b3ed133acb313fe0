"""One error family, so the CLI can tell a user's mistake from a crash."""
from __future__ import annotations


class MolplatError(Exception):
    """Base of every error molplat raises on purpose."""


class ValidationError(MolplatError):
    """Input (a pipeline, a setting, a file) is invalid; nothing has run.

    ``problems`` holds one line per problem so all of them can be shown at once.
    """

    #: how many problems the message shows; the rest are counted (300,000 typos print 21 lines)
    SHOWN = 20

    def __init__(self, problems: list[str] | str, source: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        lines = [prefix + p for p in self.problems[: self.SHOWN]]
        hidden = len(self.problems) - self.SHOWN
        if hidden > 0:
            lines.append(f"{prefix}... and {hidden} more problems (fix the ones above first)")
        super().__init__("\n".join(lines))


class PluginError(MolplatError):
    """A plugin could not be loaded or a component could not be built."""


class RunError(MolplatError):
    """A stage failed while running."""
