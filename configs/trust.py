"""Which ``module:Name`` values in a config may be imported, and from where.

Two config fields name code: ``env_id`` (``module:EnvId`` imports the module so it can register
its envs) and ``network`` (``module:Factory``). Importing a module runs it, so a run directory or
model someone else wrote must never choose what is imported (house style 24). The rule:

- an env id has one grammar (:func:`split_env_spec`): ``EnvId`` or ``module:EnvId``, with no second
  colon (Gymnasium's ``make`` would import the module named before it), so the module checked here is
  the only one an env id can import; a network is ``module:Factory`` (:func:`split_network_spec`);
- ``pettingzoo:<game>`` (:data:`GAME_MODULE`) imports no module the id names: PettingZoo's own registry
  makes the classic game, whose name envs.games checks (:func:`game_of`);
- a name the user gives on their own command line (or in their own ``--config`` file, or from
  Python) is imported as they asked; the current directory is importable for it, as ``python -m``
  would make it, and only then: a command that names no module of the user's, or reads its names
  from a run directory, has the current directory off its import path (:func:`settle_import_path`),
  so a file planted there (``ale_py.py``, ``minatar.py``) is never what an import finds;
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
import re
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
# Two-player board games (envs.games): ``pettingzoo:<classic game>`` names a PettingZoo classic game, made
# through PettingZoo's own registry (envs.games.make_aec_env checks the name's grammar); no module the id
# names is imported, so such an id is trusted in a run's config like a plain Gymnasium id.
GAME_MODULE = "pettingzoo"
IMPORT_HINT = (
    "a module is importable from a folder on PYTHONPATH (e.g. PYTHONPATH=path/to/folder), from the folder "
    "of the script, or, for a name you give on the command line, from the folder you run the command in"
)


class UntrustedImportError(UserError):
    """A run names a module to import that the user did not name or trust."""


# A module path as Python spells it: dotted identifiers (ASCII, so nothing looks like what it is not).
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
ENV_ID_FORMS = "'EnvId' (a registered Gymnasium id) or 'module:EnvId' (a Python module that registers EnvId)"


class SpecError(UserError):
    """An env id or network that does not follow its grammar."""


def split_env_spec(env_spec: str) -> tuple[str | None, str]:
    """(module or None, registered id) of an env id: ``EnvId`` or ``module:EnvId``. The id may not
    hold another colon (``gymnasium.make`` would import the module named before it), and the module
    is a dotted Python name; anything else is a SpecError."""
    module, colon, env_id = env_spec.rpartition(":")
    if not colon:
        return None, env_spec
    if ":" in module or not _MODULE.fullmatch(module) or not env_id:
        raise SpecError(f"env id {short_repr(env_spec)} is not {ENV_ID_FORMS}")
    return module, env_id


def game_of(env_spec: str) -> str | None:
    """The PettingZoo classic game a ``pettingzoo:<game>`` env id names (``tictactoe_v3``), else None."""
    module, colon, game = env_spec.rpartition(":")
    return game if colon and module == GAME_MODULE else None


def split_network_spec(spec: str) -> tuple[str, str]:
    """(module, dotted attribute) of a network ``module:Factory``; anything else is a SpecError."""
    module, colon, attribute = spec.partition(":")
    if not colon or not _MODULE.fullmatch(module) or not _MODULE.fullmatch(attribute):
        raise SpecError(f"network must look like 'module:Factory' (Python names), got {short_repr(spec)}")
    return module, attribute


def settle_import_path(typed: dict[str, Any]) -> None:
    """Decide, before anything a config names is imported, whether the current directory is on the
    import path: only if ``typed`` (the env id and network the user gave on the command line or in
    their own ``--config`` file, by field name) names a module of their own. Else the current
    directory (which ``python -m`` and ``python -c`` put first) is taken off, so that nothing a run
    directory names, nor a package imported later (``ale_py``, ``minatar``), is found there; the
    script's own folder stays. When on, it is appended, so it never shadows an installed module."""
    cwd = os.path.realpath(os.getcwd())
    chosen = [os.environ.get("PYTHONPATH", "")]  # the user's own folders (PYTHONPATH) stay, cwd or not
    if sys.argv and os.path.isfile(sys.argv[0]):
        chosen.append(os.path.dirname(sys.argv[0]))  # the script's own folder
    kept = {os.path.realpath(folder) for entry in chosen for folder in entry.split(os.pathsep) if folder}
    sys.path[:] = [entry for entry in sys.path if entry != "" and (os.path.realpath(entry) != cwd or cwd in kept)]
    if imported_modules(typed) and cwd not in sys.path:
        sys.path.append(cwd)


def cwd_importable() -> bool:
    """Whether the current directory is on the import path (processes started for a run, Ray's workers,
    get it only then)."""
    cwd = os.path.realpath(os.getcwd())
    return any(entry == "" or os.path.realpath(entry) == cwd for entry in sys.path)


def imported_modules(values: dict[str, Any]) -> dict[str, str]:
    """field -> the module its value would import, for the config fields that name code (the one
    place that reads an importing field's module: an env id through :func:`split_env_spec`)."""
    found = {}
    env_id, network = values.get("env_id"), values.get("network")
    if isinstance(env_id, str):
        module, _ = split_env_spec(env_id)
        if module is not None and module not in PROJECT_ENV_MODULES and module != GAME_MODULE:
            found["env_id"] = module
    if isinstance(network, str):
        found["network"] = split_network_spec(network)[0]
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
