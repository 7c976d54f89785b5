"""One sglang release's Triton LoRA kernels: found, loaded without sglang's runtime, and what they claim.

Where from (``locate``): ``LORA_SGLANG`` (or pytest's ``--sglang``) names a directory (a site-packages
holding ``sglang/``, the ``sglang/`` package itself, or a source checkout with ``python/sglang/``), a
release wheel (``.whl``), or a version (``0.5.9``: its wheel is fetched with ``pip download --no-deps``
into ``LORA_SGLANG_CACHE``, default ``~/.cache/lora_verify/sglang``, and only the files below are
extracted); unset, the installed sglang.

Which files: the four entry points' files in the release's kernel package (``KERNEL_PACKAGES``: it moved
twice), ``kernel_utils.py`` where the release has one (the sorted path, 0.5.11 on), the release's
``srt/lora/utils.py`` (its own ``LoRABatchInfo``, which the kernels' wrappers name) and its version file.

How (``load``): importing a kernel file normally first runs ``sglang/__init__.py`` (the whole runtime:
orjson, transformers, ...) and every package ``__init__`` on the way (kernel registries, fused ops). So the
leaves are imported under empty stand-in packages whose ``__path__`` is the real directory, and the two
names ``utils.py`` imports at module level for annotations only (``AutoConfig``, ``ForwardBatch``; their
module moved between releases) are stubbed. Afterwards every ``sglang*`` entry of ``sys.modules`` is put
back as it was, so releases coexist in one process and a real ``import sglang`` is unaffected.
``@triton.jit`` picks interpreter or compiler when a kernel file is imported: load after the backend is
chosen.

What a release claims (``profile``, ``lora_verify.profiles``), from its version:

- layouts: per-sequence; sorted from 0.5.11 (earlier kernels ignore ``permutation``);
- rounding "lora_first": every release's expands round ``s * (x @ W)`` to the output dtype, then add
  ``base`` and round again;
- a dense ``x`` only: the shrink and plain expand wrappers ``assert x.is_contiguous()``;
- no named input errors: bare asserts on a few shapes;
- deterministic, batch-invariant (one owner program per output element, a fixed reduction order), every
  dtype (the kernels are dtype-generic; fp32 dots run as tf32 on NVIDIA, which the bound covers) and CUDA
  graph capture (sglang's server captures these kernels).
"""

import dataclasses
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from packaging.version import InvalidVersion, Version

from lora_verify.adapters import stubs
from lora_verify.profiles import Profile

SORTED_SINCE = Version("0.5.11")  # kernel_utils._resolve_token_positions: the kernels honour permutation
ENV, CACHE_ENV = "LORA_SGLANG", "LORA_SGLANG_CACHE"
ENTRY_FILES = {  # entry point -> its file in the kernel package
    "sgemm_lora_a_fwd": "sgemm_lora_a",
    "sgemm_lora_b_fwd": "sgemm_lora_b",
    "qkv_lora_b_fwd": "qkv_lora_b",
    "gate_up_lora_b_fwd": "gate_up_lora_b",
}
KERNEL_PACKAGES = (  # newest first
    "sglang.kernels.ops.lora.dense",  # 0.5.22 on
    "sglang.kernels.ops.gemm",  # 0.5.16 - 0.5.21
    "sglang.srt.lora.triton_ops",  # up to 0.5.15.post1
)
UTILS = "srt/lora/utils.py"  # LoRABatchInfo
# SPEC.md's batch-info fields: every release's class has a subset of them, and others only with defaults
SPEC_FIELDS = ("bs", "num_segments", "seg_lens", "seg_indptr", "weight_indices", "lora_ranks", "scalings", "max_len",
               "permutation", "use_cuda_graph")
VERSION_FILES = ("_version.py", "version.py")  # 0.5.8 on: _version.py holds the literal; before: version.py
# utils.py's module-level sglang imports, per release, and the names they take (annotations only)
UTILS_IMPORTS = {
    "sglang.srt.hf_transformers_utils": "AutoConfig",  # up to 0.5.2
    "sglang.srt.utils.hf_transformers_utils": "AutoConfig",  # 0.5.4 on
    "sglang.srt.model_executor.forward_batch_info": "ForwardBatch",  # 0.5.8 on
}


@dataclass(frozen=True)
class Release:
    """A loaded release: its version ("" when unreadable), where it came from, its kernels and batch-info class."""

    version: str
    source: str
    package_dir: Path  # the sglang/ directory
    kernel_package: str
    kernels: dict  # entry-point name -> sglang's launch wrapper
    batch_info_class: type  # the release's own LoRABatchInfo

    @property
    def kernel_dir(self) -> Path:
        return self.package_dir.joinpath(*self.kernel_package.split(".")[1:])


def kernel_files(kernel_package: str) -> list:
    """Paths, relative to the sglang/ directory, of the files a release needs from ``kernel_package``."""
    sub = Path(*kernel_package.split(".")[1:])
    return [str(sub / f"{leaf}.py") for leaf in (*ENTRY_FILES.values(), "kernel_utils")]


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lora_verify" / "sglang")


def _wanted(member: str) -> bool:
    """Whether a wheel member is one of the files a release needs (or another backend's LoRA kernels: the
    csgmv and triton_v2 adapters load them from the same extraction)."""
    files = {f"sglang/{f}" for pkg in KERNEL_PACKAGES for f in kernel_files(pkg)}
    return member in files | {f"sglang/{UTILS}"} | {f"sglang/{v}" for v in VERSION_FILES} or member.startswith(
        "sglang/kernels/ops/lora/"
    )


def extract(wheel: Path, into: Optional[Path] = None) -> Path:
    """The needed files of a release wheel, extracted under ``into`` (default: the cache, by wheel name)."""
    into = into or cache_dir() / f"{wheel.name.removesuffix('.whl')}.lora"  # .lora: the LoRA tree, all backends
    if not (into / "sglang").is_dir():
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if _wanted(m)]
            if not members:
                raise ImportError(f"{wheel} holds no sglang LoRA kernel files")
            partial = into.with_name(f"{into.name}.partial{os.getpid()}")
            zf.extractall(partial, members)
        try:
            partial.rename(into)
        except OSError:  # another process extracted it first: keep its copy
            shutil.rmtree(partial)
    return into / "sglang"


def fetch(version: str) -> Path:
    """sglang ``version``'s wheel in the cache, downloaded with ``pip download --no-deps`` if absent.

    The kernel files are plain Python in every wheel, so any wheel will do: from 0.5.11 on there are only
    CPython-specific ones, hence the explicit tags (cp311, manylinux x86-64) whatever this Python is.
    """
    wheels = cache_dir() / "wheels"
    found = sorted(wheels.glob(f"sglang-{version}-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--python-version",
               "3.11", "--platform", "manylinux_2_34_x86_64", "--dest", str(wheels), f"sglang=={version}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(wheels.glob(f"sglang-{version}-*.whl"))
        if done.returncode or not found:
            raise ImportError(f"could not fetch sglang {version} ({' '.join(cmd)}): {done.stderr.strip()[-600:]}")
    return extract(found[0], cache_dir() / f"{version}.lora")


def installed() -> Path:
    spec = importlib.util.find_spec("sglang")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"no sglang to test: sglang is not installed here, and {ENV} (or pytest's --sglang) names none "
            "(a directory, a .whl, or a version such as 0.5.23 to fetch; or pip install --no-deps sglang==X)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def locate(spec: Optional[str]) -> tuple:
    """(the sglang/ directory, a description of the source) for a ``LORA_SGLANG`` value (see the module doc)."""
    if not spec:
        return installed(), "installed"
    path = Path(spec).expanduser()
    if path.suffix == ".whl" and path.is_file():
        return extract(path), str(path)
    if path.is_dir():
        for candidate in (path / "sglang", path / "python" / "sglang", path):
            if (candidate / UTILS).is_file() or any((candidate / f).is_file() for f in VERSION_FILES):
                return candidate, str(path)
        raise ImportError(f"{path} holds no sglang package (looked for sglang/, python/sglang/ and the directory)")
    if re.fullmatch(r"\d+(\.\d+)+(\.?(post|rc|dev)\d+)?", spec):
        return fetch(spec), f"wheel {spec}"
    raise ImportError(f"{ENV}={spec!r}: not a directory, a .whl file or a version")


def read_version(package_dir: Path) -> str:
    """The release's version from its version file, without importing it ("" when there is none)."""
    for name in VERSION_FILES:
        path = package_dir / name
        if path.is_file():
            found = re.search(r"^__version__\s*=\s*(?:version\s*=\s*)?['\"]([^'\"]+)['\"]", path.read_text(), re.M)
            if found:
                return found.group(1)
    try:  # an installed sglang built from a checkout: version.py imports _version.py, which it may lack
        if package_dir == installed():
            return importlib.metadata.version("sglang")
    except (ImportError, importlib.metadata.PackageNotFoundError):
        pass
    return ""


def kernel_package(package_dir: Path) -> str:
    for pkg in KERNEL_PACKAGES:
        if all((package_dir / f).is_file() for f in kernel_files(pkg)[:-1]):
            return pkg
    wanted = " or ".join(f"{p.replace('.', '/')}/{{{','.join(ENTRY_FILES.values())}}}.py" for p in KERNEL_PACKAGES)
    raise ImportError(f"{package_dir} lacks sglang's Triton LoRA kernels ({wanted})")


def _stand_ins(package_dir: Path, kpkg: str) -> dict:
    """Empty packages for every level down to the kernel package and to sglang.srt.lora; stubs for utils.py."""
    modules = {}
    for dotted in (kpkg, "sglang.srt.lora"):
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            modules.setdefault(name, stubs.package(name, package_dir.joinpath(*parts[1:i])))
    for name, attr in UTILS_IMPORTS.items():
        parts = name.split(".")
        for i in range(2, len(parts)):
            modules.setdefault(".".join(parts[:i]), stubs.package(".".join(parts[:i])))
        stub = types.ModuleType(name)
        setattr(stub, attr, type(attr, (), {"__doc__": "stand-in: sglang's utils.py names it in annotations only"}))
        modules[name] = stub
    return modules


def load(spec: Optional[str] = None) -> Release:
    """The release ``spec`` names (``LORA_SGLANG`` when None), its kernels imported under stand-in packages."""
    spec = os.environ.get(ENV, "") if spec is None else spec
    package_dir, source = locate(spec)
    package_dir = package_dir.resolve()
    kpkg = kernel_package(package_dir)
    if not (package_dir / UTILS).is_file():
        raise ImportError(f"{package_dir} lacks {UTILS}: the release's LoRABatchInfo, which its kernels take")
    saved = {n: m for n, m in sys.modules.items() if n == "sglang" or n.startswith("sglang.")}
    for name in saved:
        del sys.modules[name]
    sys.modules.update(_stand_ins(package_dir, kpkg))
    try:
        batch_info = importlib.import_module("sglang.srt.lora.utils").LoRABatchInfo
        kernels = {e: getattr(importlib.import_module(f"{kpkg}.{f}"), e) for e, f in ENTRY_FILES.items()}
    except ImportError as exc:
        raise ImportError(f"sglang's LoRA kernels in {package_dir} could not be imported: {exc}") from exc
    finally:
        for name in [n for n in sys.modules if n == "sglang" or n.startswith("sglang.")]:
            del sys.modules[name]
        sys.modules.update(saved)
    if not dataclasses.is_dataclass(batch_info):
        raise ImportError(f"{package_dir / UTILS}: LoRABatchInfo is not a dataclass")
    missing = dataclasses.MISSING
    unknown = [f.name for f in dataclasses.fields(batch_info)
               if f.name not in SPEC_FIELDS and f.default is missing and f.default_factory is missing]
    if unknown:
        raise ImportError(f"{package_dir / UTILS}: LoRABatchInfo requires fields SPEC.md lacks: {unknown}")
    return Release(read_version(package_dir), source, package_dir, kpkg, kernels, batch_info)


def serves_sorted(release: Release) -> bool:
    """Whether the release's kernels serve the sorted layout: by version; a checkout without one, by its files."""
    try:
        return Version(release.version) >= SORTED_SINCE
    except InvalidVersion:
        return (release.kernel_dir / "kernel_utils.py").is_file()


def profile(release: Release) -> Profile:
    """What the release claims (the module docstring), with its version and where its kernels are."""
    where = str(release.kernel_dir)
    return Profile(
        name="sglang triton",
        version=release.version or "(version unknown)",
        source=where if Path(release.source).is_dir() else f"{where}, from {release.source}",
        layouts=("unsorted", "sorted") if serves_sorted(release) else ("unsorted",),
        strided_x=False,
        input_errors=False,
        rounding="lora_first",
        why={
            "sorted": f"before {SORTED_SINCE} sglang's kernels ignore permutation (per-sequence segments only)",
            "strided_x": "its shrink and expand wrappers assert x.is_contiguous(); its callers pass a dense x",
            "input_errors": "its wrappers check a few shapes with asserts, no named error per argument",
        },
    )
