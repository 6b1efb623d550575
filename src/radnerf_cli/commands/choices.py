"""The fixed sets of values some options take. Typer turns each into a choice: help lists the values,
shells complete them, and a wrong value is a usage error (exit code 2) named by the parser.

Commands pass ``.value`` (a plain string) on to the engine.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A string choice whose ``str()`` is its value (so messages print ``cpu``, not ``Device.cpu``)."""

    def __str__(self) -> str:
        return self.value


class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Backend(Choice):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"
    torch = "torch"


class BuildBackend(Choice):
    cpu = "cpu"
    cuda = "cuda"
    all = "all"


class BenchBackend(Choice):
    torch = "torch"
    cpu = "cpu"
    cuda = "cuda"


class KernelFamily(Choice):
    """The kernel families of kernels/loader.py's FAMILIES (importing it here would import torch)."""

    encoding = "encoding"
    raymarch = "raymarch"


class AudioFeatures(Choice):
    whisper = "whisper"
    mel = "mel"


class TrainStage(Choice):
    head = "head"
    lips = "lips"
    torso = "torso"
    all = "all"


class Stage(Choice):
    """Trained weights to use: the checkpoint after this stage."""

    head = "head"
    lips = "lips"
    torso = "torso"


class Preset(Choice):
    fast = "fast"
    full = "full"


class ExportFormat(Choice):
    bundle = "bundle"
    mesh = "mesh"


class Split(Choice):
    val = "val"
    train = "train"
    all = "all"


def value(choice: Choice | None) -> str | None:
    """The plain string of a choice (None stays None)."""
    return None if choice is None else choice.value
