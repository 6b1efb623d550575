"""Typed configs: omegaconf structured dataclasses, a YAML file and ``key=value`` overrides.

Each part of the engine declares its own dataclass, with a one-line comment on every field. Load one
with :func:`load_config`; unknown keys and wrong types raise :class:`ConfigError` naming the key.
The resolved config is saved beside every run with :func:`save_config`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from radnerf_cli import fsutil
from radnerf_cli.errors import ConfigError

T = TypeVar("T")


def _merge(base, other, source: str):
    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or getattr(e, "key", None)
        msg = str(e).splitlines()[0]
        if "Key" in msg and "not in" in msg:
            raise ConfigError(f"{source}: unknown config key '{key}'", hint="`radnerf train --show-config` lists every key") from None
        raise ConfigError(f"{source}: bad value for '{key}': {msg}") from None


def load_config(
    schema: type[T],
    yaml_path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    base: dict[str, Any] | None = None,
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> T:
    """Build a config of type ``schema``: defaults <- ``base`` <- YAML file <- ``key=value`` overrides.

    ``upgrade`` maps a loaded YAML dict saved by an older version onto the schema's key names.
    Returns a typed ``DictConfig`` that behaves as an instance of ``schema``.
    """
    cfg = OmegaConf.structured(schema)
    if base:
        cfg = _merge(cfg, OmegaConf.create(base), "preset")
    if yaml_path is not None:
        p = Path(yaml_path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            loaded = OmegaConf.load(p)
        except Exception as e:  # yaml errors come in many types
            raise ConfigError(f"{p}: not a valid YAML config: {str(e).splitlines()[0]}") from None
        if upgrade is not None and isinstance(loaded, DictConfig):
            loaded = OmegaConf.create(upgrade(OmegaConf.to_container(loaded)))
        cfg = _merge(cfg, loaded, str(p))
    dotlist = []
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override '{item}' is not of the form key=value")
        dotlist.append(item)
    if dotlist:
        try:
            over = OmegaConf.from_dotlist(dotlist)
        except OmegaConfBaseException as e:
            raise ConfigError(f"bad override: {str(e).splitlines()[0]}") from None
        cfg = _merge(cfg, over, "override")
    return cfg  # type: ignore[return-value]


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(cfg)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically."""
    fsutil.write_text(path, OmegaConf.to_yaml(cfg, resolve=True))


def to_dict(cfg: Any) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def field_docs(schema: type) -> dict[str, str]:
    """One-line docs of a config dataclass's fields, from the comment after each field, by dotted key.

    Nested dataclass fields recurse: ``{"train.num_rays": "rays per training step", ...}``.
    """
    import ast
    import dataclasses
    import inspect
    import io
    import textwrap
    import tokenize

    src = textwrap.dedent(inspect.getsource(schema))
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(src).readline) if tok.type == tokenize.COMMENT}
    cls = ast.parse(src).body[0]
    line_of = {n.target.id: n.end_lineno for n in cls.body
               if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    docs: dict[str, str] = {}
    for f in dataclasses.fields(schema):
        sub = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if isinstance(sub, type) and dataclasses.is_dataclass(sub):
            docs.update({f"{f.name}.{k}": v for k, v in field_docs(sub).items()})
        else:
            docs[f.name] = comments.get(line_of.get(f.name, -1), "")
    return docs


def describe(cfg: Any, schema: type) -> list[tuple[str, Any, str]]:
    """(dotted key, value, one-line doc) for every leaf of a resolved config, in declaration order."""
    docs = field_docs(schema)
    flat: list[tuple[str, Any, str]] = []

    def walk(node: Any, prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            else:
                flat.append((key, v, docs.get(key, "")))

    walk(to_dict(cfg), "")
    return flat
