"""Which ``module:Name`` values in a config may be imported, and from where.

Two config fields name code: ``env_id`` (``module:EnvId`` imports the module so it can register
its envs) and ``network`` (``module:Factory``). Importing a module runs it, so a run directory or
model someone else wrote must never choose what is imported (house style 24). The rule:

- a name the user gives on their own command line (or in their own ``--config`` file, or from
  Python) is imported as they asked; the current directory is importable for it, as ``python -m``
  would make it (:func:`allow_imports_from_cwd`);
- a name read back from a run's ``config.yaml`` (``evaluate.py``, ``train.py --resume``) is
  imported only if the user gave the same value on the command line or passed ``--trust-imports``;
  nothing is imported before that is settled (:func:`check_run_imports`);
- even when trusted, a module whose files (the module, or any package ``__init__`` on its way)
  lie inside the run directory is refused: code shipped inside a run directory never runs.

Finding where a module lives (:func:`module_files`) imports nothing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from dqn_family.configs.errors import UserError
from dqn_family.fileio import short_repr

IMPORTING_FIELDS = ("env_id", "network")
# The project's own env modules, by each name an env id may give them (``envs.pomdp:CartPoleNoVelocity-v1``
# as the README writes it, or the full ``dqn_family.envs.pomdp:...``): always imported from this package,
# never from the user's folders, and so trusted in a run's config like a plain Gymnasium id.
PROJECT_ENV_MODULES = {
    name: f"dqn_family.{module}"
    for module in ("envs.pomdp", "envs.popgym_tasks")
    for name in (module, f"dqn_family.{module}")
}
IMPORT_HINT = (
    "a module is importable from the folder you run the command in, from the folder of the script, "
    "or from a folder on PYTHONPATH (e.g. PYTHONPATH=path/to/folder)"
)


class UntrustedImportError(UserError):
    """A run names a module to import that the user did not name or trust."""


def allow_imports_from_cwd() -> None:
    """Make the current directory importable for ``module:Name`` values the user gives, as
    ``python -m`` would (a script's own folder is on sys.path, the user's folder is not).
    Appended, so it never shadows an installed module."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def imported_modules(values: dict[str, Any]) -> dict[str, str]:
    """field -> the module its value would import, for the config fields that name code."""
    found = {}
    for field in IMPORTING_FIELDS:
        value = values.get(field)
        if isinstance(value, str) and ":" in value:
            module = value.split(":", 1)[0]
            if not (field == "env_id" and module in PROJECT_ENV_MODULES):
                found[field] = module
    return found


def check_run_imports(
    values: dict[str, Any], run_dir: Path, *, given: Collection[str] = (), trust_imports: bool = False
) -> None:
    """Refuse (UntrustedImportError, one line) to load a run whose config names a module to
    import, unless its value is among ``given`` (what the user named on their own command line)
    or ``trust_imports``; and refuse any such module that lives inside ``run_dir``."""
    for field, module in imported_modules(values).items():
        value = values[field]
        if not trust_imports and value not in given:
            raise UntrustedImportError(
                f"{run_dir / 'config.yaml'} has {field}: {short_repr(value)}, which would import module "
                f"{short_repr(module)} and run its code; nothing was imported. If you trust this run, pass "
                "--trust-imports"
            )
        inside = [path for path in module_files(module) if _is_within(path, run_dir)]
        if inside:
            raise UntrustedImportError(
                f"module {short_repr(module)} named by {field} in {run_dir / 'config.yaml'} would be imported "
                f"from {inside[0]}, inside the run directory; code shipped in a run directory is never imported, "
                "even with --trust-imports"
            )


def module_files(name: str) -> list[Path]:
    """The files and folders importing module ``name`` would run from (each package's
    ``__init__`` on the way, namespace folders, then the module), found without importing
    anything, as far as they can be found."""
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: nothing is imported to find it
    except (ImportError, ValueError):  # a malformed name: the import itself will say so
        return []
    if spec is None:
        return []
    origin, locations = spec.origin, list(spec.submodule_search_locations or [])
    files = []
    for part in [*parts[1:], None]:
        if origin and origin not in ("built-in", "frozen"):
            files.append(Path(origin))
        files.extend(Path(location) for location in locations)
        if part is None or not locations:
            break
        origin, locations = _find_in(part, locations)
    return files


def _find_in(part: str, locations: list[str]) -> tuple[str | None, list[str]]:
    """(origin, search locations) of submodule ``part`` in a package's folders, as the path
    finder would find it: a package, else a module, else the namespace portions."""
    portions = []
    for location in locations:
        folder = Path(location) / part
        for candidate in [folder / f"__init__{suffix}" for suffix in _SUFFIXES]:
            if candidate.is_file():
                return str(candidate), [str(folder)]
        for candidate in [Path(location) / f"{part}{suffix}" for suffix in _SUFFIXES]:
            if candidate.is_file():
                return str(candidate), []
        if folder.is_dir():
            portions.append(str(folder))
    return None, portions


_SUFFIXES = importlib.machinery.all_suffixes()


def _is_within(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
        return True
    except ValueError:
        return False
