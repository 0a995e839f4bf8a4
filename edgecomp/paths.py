"""Every place edgecomp reads or writes on this machine, with the overrides users can set.

On Linux the defaults follow XDG (platformdirs honours $XDG_CONFIG_HOME, $XDG_DATA_HOME
and $XDG_CACHE_HOME):

    profiles   $EDGECOMP_PROFILES, else ~/.config/edgecomp/profiles/
    targets    $EDGECOMP_TARGETS,  else ~/.config/edgecomp/targets/  (with known_hosts)
    recipes    $EDGECOMP_RECIPES,  else ~/.config/edgecomp/recipes/
    results    $EDGECOMP_DB,       else ~/.local/share/edgecomp/results.db
               (or a postgresql:// URL: a shared PostgreSQL store)
    cache      $EDGECOMP_CACHE,    else ~/.cache/edgecomp/
               (boards/NAME.facts.json: what a target's agent last reported)
    artifacts  $EDGECOMP_ARTIFACT_CACHE, else <cache>/artifacts/  ("off": never reuse)
               (exported artifacts by content key, reused by the next deploy or export)
    spool      ~/.local/state/edgecomp/spool/  (runs measured while their store failed,
               kept until the store takes them; see results/store/spool.py)

Shipped profiles, recipes and CI files are package data under `edgecomp/shipped/`, read with
importlib.resources so that they are found in a wheel install as in a checkout.
Every function reads the environment when called, so a changed variable takes effect.
"""

from __future__ import annotations

import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import platformdirs

APP = "edgecomp"


def _override(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


def config_dir() -> Path:
    """The user's edgecomp configuration directory (~/.config/edgecomp on Linux)."""
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def profiles_dir() -> Path:
    """Where the user's own hardware profiles live; they override shipped ones by name."""
    return _override("EDGECOMP_PROFILES") or config_dir() / "profiles"


def targets_dir() -> Path:
    """The user's target inventory: one TOML file per board, plus `known_hosts`."""
    return _override("EDGECOMP_TARGETS") or config_dir() / "targets"


def known_hosts() -> Path:
    """SSH host keys trusted with `edgecomp targets trust NAME`."""
    return targets_dir() / "known_hosts"


def recipes_dir() -> Path:
    """Where the user's own recipes live; they override shipped ones by name."""
    return _override("EDGECOMP_RECIPES") or config_dir() / "recipes"


def db_path() -> Path:
    """The results database (~/.local/share/edgecomp/results.db on Linux)."""
    return _override("EDGECOMP_DB") or Path(platformdirs.user_data_dir(APP, appauthor=False)) \
        / "results.db"


def db_location() -> str | Path:
    """EDGECOMP_DB as given when it is a PostgreSQL URL (postgresql:// or postgres://),
    else the SQLite file `db_path()` names."""
    value = os.environ.get("EDGECOMP_DB", "")
    if value.startswith(("postgresql://", "postgres://")):
        return value
    return db_path()


def cache_dir() -> Path:
    """Where trained demo weights and other re-creatable files are kept."""
    return _override("EDGECOMP_CACHE") or Path(platformdirs.user_cache_dir(APP, appauthor=False))


def artifact_cache_dir() -> Path | None:
    """Where exported artifacts are kept for reuse; None when EDGECOMP_ARTIFACT_CACHE=off."""
    if os.environ.get("EDGECOMP_ARTIFACT_CACHE", "").strip().lower() == "off":
        return None
    return _override("EDGECOMP_ARTIFACT_CACHE") or cache_dir() / "artifacts"


def state_dir() -> Path:
    """edgecomp's own state on this machine (~/.local/state/edgecomp on Linux)."""
    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def spool_dir() -> Path:
    """Runs measured but not yet recorded, one folder per results store."""
    return state_dir() / "spool"


def board_facts_file(target: str) -> Path:
    """What `target`'s agent last said about its board, kept for plans made offline."""
    return cache_dir() / "boards" / f"{target}.facts.json"


def shipped(kind: str) -> Traversable:
    """The package-data directory of one kind of shipped file: "profiles", "recipes" or
    "ci" (what `edgecomp ci init` writes into a repository)."""
    return resources.files("edgecomp").joinpath("shipped", kind)
