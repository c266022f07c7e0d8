"""Reading files that may come from someone else (a downloaded run directory, a colleague's config)
with everything bounded: only regular files, at most ``max_bytes`` of them, JSON and YAML nested
at most ``MAX_DEPTH`` deep, YAML without aliases (a 1 KB alias bomb expands to gigabytes) or
duplicate keys, and error messages that never print more than a short excerpt of a value.

Every function raises the exception type its caller gives (``error``), with a one-line message.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_DEPTH = 32  # deeper than any file this project writes; a RecursionError long before Python's limit


class _ShortRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 128:  # Python refuses to print an int of more than 4,300 digits at all
            return f"an integer of {x.bit_length():,} bits"
        return super().repr_int(x, level)


_SHORT = _ShortRepr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict, _SHORT.maxset = 2, 4, 4, 4, 4
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 1000, 1000, 1000  # then cut to the limit


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, in time bounded whatever ``value`` is (deeply
    nested, a graph of shared references that would expand exponentially, a huge int): a message
    never quotes an unbounded value."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, without terminal colour codes, at most ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(error).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of_file(path: Path) -> str | None:
    """None for a regular file (a symlink counts as what it points to); else what is there:
    'nothing', 'a symbolic link to nothing', 'a folder', 'a named pipe (FIFO)', 'a character
    device', 'a block device', 'a socket'."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a symbolic link to nothing" if os.path.islink(path) else "nothing"
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def require_regular_file(path: Path, *, what: str, error: type[Exception]) -> None:
    """``error`` naming what ``path`` is, unless it is a regular file."""
    kind = kind_of_file(path)
    if kind == "nothing":
        raise error(f"{what} {path} does not exist")
    if kind is not None:
        raise error(f"{what} {path} is {kind}, not a regular file")


def read_regular_file(path: str | Path, *, max_bytes: int, what: str, error: type[Exception]) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; anything else is ``error``."""
    path = Path(path)
    require_regular_file(path, what=what, error=error)
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open() does not hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise error(f"{what} {path} is not a regular file")
            data = handle.read(max_bytes + 1)
    except OSError as problem:
        raise error(f"cannot read {what} {path}: {problem.strerror or one_line(problem)}") from None
    if len(data) > max_bytes:
        raise error(f"{what} {path} is larger than {max_bytes:,} bytes; it cannot be one of this project's files")
    return data


def check_depth(value: Any, *, what: str, error: type[Exception], limit: int = MAX_DEPTH) -> Any:
    """``value`` if its lists, tuples and dicts nest at most ``limit`` deep and hold no cycle;
    else ``error``. Without recursion, and each container is measured once, so a graph of shared
    references (a pickle memo bomb) costs its size, not the size of its expansion."""
    heights: dict[int, int] = {}  # id of a container -> its nesting depth, itself included
    open_ids: set[int] = set()  # containers whose children are still being measured
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, measured = stack.pop()
        if not isinstance(item, (list, tuple, dict)) or id(item) in heights:
            continue
        children = [
            child
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (list, tuple, dict))
        ]
        if measured:
            height = 1 + max((heights[id(child)] for child in children), default=0)
            if height > limit:
                raise error(f"{what} nests lists or mappings more than {limit} deep")
            heights[id(item)] = height
            open_ids.discard(id(item))
            continue
        if id(item) in open_ids:
            raise error(f"{what} holds a list or mapping that contains itself")
        open_ids.add(id(item))
        stack.append((item, True))
        stack.extend((child, False) for child in children if id(child) not in heights)
    return value


def load_json(path: str | Path, *, max_bytes: int, what: str, error: type[Exception]) -> Any:
    """A JSON file's value, read with :func:`read_regular_file` and nested at most MAX_DEPTH deep."""
    data = read_regular_file(path, max_bytes=max_bytes, what=what, error=error)
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise error(f"{what} {path} is damaged: it is not valid JSON") from None
    return check_depth(value, what=f"{what} {path}", error=error)


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader (plain data only, never code) that also refuses aliases, duplicate keys and
    nesting deeper than MAX_DEPTH, so that what a file holds is no bigger than the file."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _Refused(f"uses a YAML alias (line {mark.line + 1}); aliases are not allowed, write the value out")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"nests lists or mappings more than {MAX_DEPTH} deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in keys
                keys.add(key)
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            if duplicate:
                raise _Refused(
                    f"sets {short_repr(key)} twice (line {key_node.start_mark.line + 1}); each key may appear once"
                )
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    pass


def load_yaml(path: str | Path, *, max_bytes: int, what: str, error: type[Exception]) -> Any:
    """A YAML file's plain data (``yaml.safe_load`` semantics), bounded as this module says."""
    data = read_regular_file(path, max_bytes=max_bytes, what=what, error=error)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as refused:
        raise error(f"{what} {path} {refused}") from None
    except yaml.YAMLError as problem:
        where = getattr(problem, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise error(f"{what} {path} is not valid YAML{line}") from None
    except RecursionError:  # belt and braces: the depth limit should come first
        raise error(f"{what} {path} nests too deep") from None
    except (ValueError, OverflowError):  # a value YAML parses but cannot build: 2001-02-30, a 5,000-digit int
        raise error(
            f"{what} {path} holds a value that cannot be read (an impossible date, a too long number)"
        ) from None
    finally:
        loader.dispose()


# A password in a URL, as SQLAlchemy, MLflow and requests read one: scheme://user:password@host (the
# password up to the last '@' before the path, spaces and all), user:password@host with no scheme (a
# URL whose scheme was forgotten), the whole user part of an http(s) URL with no password
# (https://TOKEN@host, a token), and a query parameter whose name says it is secret
# (password=, sslpassword=, api_key=, access_token=, ...).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^/]{0,200}@")
_HTTP_TOKEN = re.compile(r"(?P<head>\bhttps?://)[^\s:/@]+@", re.IGNORECASE)
_BARE_PASSWORD = re.compile(r"(?P<head>(?:^|(?<=[\s'\"=(]))[\w.%+-]+:)[^\s/@:]+@(?=[\w\[])")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&;][\w.-]*(?:pass|pwd|secret|token|key)[\w.-]*=)[^&;\s'\"]*", re.IGNORECASE)


def redact_credentials(text: str) -> str:
    """``text`` with each secret in it replaced by ``***`` (the forms above). Everything that records
    or prints a command line, a URL or an error message that may quote one passes it through this."""
    text = _URL_PASSWORD.sub(lambda match: f"{match['head']}***@", text)
    text = _HTTP_TOKEN.sub(lambda match: f"{match['head']}***@", text)
    text = _BARE_PASSWORD.sub(lambda match: f"{match['head']}***@", text)
    return _QUERY_PASSWORD.sub(lambda match: f"{match['head']}***", text)
