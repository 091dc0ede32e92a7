"""The jit's exceptions, and the one way a message points at the user's source line."""

from __future__ import annotations

import linecache


class JitError(TypeError):
    """A function cannot be compiled: an unsupported construct, or a type that does not fit.

    The message names the function, file, line and construct and says what to write instead.
    """

    def __init__(
        self,
        message: str,
        *,
        function: str = "?",
        filename: str = "?",
        line: int = 0,
        construct: str = "",
    ) -> None:
        self.function = function
        self.filename = filename
        self.line = line
        self.construct = construct
        super().__init__(f"{where(function, filename, line)}: {message}{quote(filename, line)}")


def where(function: str, filename: str, line: int) -> str:
    return f"in jitted function {function!r} ({filename}, line {line})"


def quote(filename: str, line: int) -> str:
    """The source line, indented on a line of its own, or '' when it cannot be read."""
    text = linecache.getline(filename, line).strip() if line > 0 else ""
    return f"\n    {line} | {text}" if text else ""
