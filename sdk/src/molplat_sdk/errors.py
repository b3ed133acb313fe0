"""The one failure type of the conformance suite."""
from __future__ import annotations


class ConformanceError(AssertionError):
    """A plugin breaks a molplat contract; the message says what to change.

    A subclass of AssertionError so pytest reports it as a plain test failure.
    """

    def __init__(self, component: str, problem: str, fix: str) -> None:
        super().__init__(f"{component}: {problem}\n  fix: {fix}")
        self.component, self.problem, self.fix = component, problem, fix
