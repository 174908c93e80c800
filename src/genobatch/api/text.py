"""Text no request may carry: lone UTF-16 surrogates and U+0000 (NUL).

A JSON ``\\ud800`` escape decodes to a lone surrogate, which no UTF-8 encoder accepts: once stored,
every response that includes it would fail to encode. NUL cannot be stored in a PostgreSQL text
column nor passed to a process (argv, environment). Both are refused on the way in, wherever they
appear: body values, member names, map keys, path labels and query values.
"""

from __future__ import annotations

import re
from typing import Any

from genobatch.api.errors import ClientException

__all__ = ["refuse_unstorable_text"]

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def refuse_unstorable_text(params: dict[str, Any]) -> None:
    """Raise ClientException naming a string (member name, map key or value) anywhere in
    ``params`` that holds a lone surrogate or U+0000.

    Iterative, not recursive: a body may be nested as deep as the JSON decoder allows, which is
    about as deep as Python's own stack.
    """
    pending: list[tuple[Any, str]] = [(params, "")]
    while pending:
        value, where = pending.pop()
        if isinstance(value, str):
            found = _UNSTORABLE.search(value)
            if found:
                raise ClientException(
                    f"Invalid value at '{where or 'input'}': character U+{ord(found.group()):04X} is not allowed "
                    "(lone UTF-16 surrogates and NUL cannot be stored)"
                )
        elif isinstance(value, dict):
            for key, item in value.items():
                # The message must not echo the character itself: it would not encode either.
                path = _member_path(where, _UNSTORABLE.sub("?", key))
                if _UNSTORABLE.search(key):
                    raise ClientException(
                        f"Invalid member name or map key '{path}': lone UTF-16 surrogates and NUL are not allowed"
                    )
                pending.append((item, path))
        elif isinstance(value, list):
            pending.extend((item, f"{where}[{index}]") for index, item in enumerate(value))


def _member_path(parent: str, key: str) -> str:
    """``parent.key`` as validation messages name members, the key cut short (it is echoed)."""
    shown = key if len(key) <= 64 else key[:61] + "..."
    return f"{parent}.{shown}" if parent else shown
