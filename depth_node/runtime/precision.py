"""Which file of a model to run on which execution provider (DESIGN.md, "Precision per provider").

One model can be exported at several precisions, kept side by side under one base name:
``name.onnx`` (fp32), ``name.fp16.onnx`` and ``name.int8.onnx`` (``depth-export --fp16 / --int8``).
CPUs run fp32 or int8 (fp16 is slower than fp32 on a CPU); GPUs run fp16: TensorRT builds an fp16
engine from the fp32 file itself (or an int8 engine from the int8 file's Q/DQ nodes), CUDA runs the
fp16 file. ``precision: auto`` runs the file the user named unless a sibling suits the provider better;
an explicit precision runs that sibling or says which ones exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from depth_node.runtime.errors import ModelLoadError

PRECISIONS = ("auto", "fp32", "fp16", "int8")
_SUFFIX = {"fp32": "", "fp16": ".fp16", "int8": ".int8"}
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


@dataclass(frozen=True)
class ModelChoice:
    """The file to open on one provider, its precision (from its name) and why it was chosen."""

    path: Path
    precision: str
    reason: str


def split_precision(path: Path) -> tuple[Path, str]:
    """(``folder/name``, precision) of ``folder/name[.fp16|.int8].onnx``; no suffix reads as fp32."""
    stem = path.name.removesuffix(".onnx")
    for precision in ("fp16", "int8"):
        if stem.endswith(_SUFFIX[precision]):
            return path.with_name(stem.removesuffix(_SUFFIX[precision])), precision
    return path.with_name(stem), "fp32"


def sibling(base: Path, precision: str) -> Path:
    return base.with_name(f"{base.name}{_SUFFIX[precision]}.onnx")


def choose_model_file(model_path: Path, provider: str, precision: str = "auto") -> ModelChoice:
    """The file of ``model_path``'s model to run on ``provider`` at ``precision`` (auto or a name)."""
    if precision not in PRECISIONS:
        raise ModelLoadError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    base, given = split_precision(model_path)
    on_gpu = provider in (CUDA, TENSORRT)
    if precision != "auto":
        if precision == "fp16" and not on_gpu:
            raise ModelLoadError(
                f"precision fp16 runs on GPU providers only ({provider} is not one): on a CPU fp16 is "
                "slower than fp32; use fp32 or int8"
            )
        wanted = model_path if precision == given else sibling(base, precision)
        if not wanted.is_file():
            found = [p for p in _SUFFIX if sibling(base, p).is_file()]
            raise ModelLoadError(
                f"precision {precision}: no {wanted.name} next to {model_path.name} "
                f"(found: {', '.join(found) or 'none'}; export it with depth-export)"
            )
        return ModelChoice(wanted, precision, "asked for")
    # auto: GPUs prefer fp16 (TensorRT makes its own fp16 engine from fp32), CPUs fp32.
    preferred = {CUDA: "fp16", TENSORRT: "fp32"}.get(provider, "fp32")
    if given in ("fp16", "fp32") and given != preferred and sibling(base, preferred).is_file():
        return ModelChoice(sibling(base, preferred), preferred, f"{preferred} suits {provider} best")
    if given == "fp16" and not on_gpu:
        return ModelChoice(model_path, given, "no fp32 sibling: fp16 on a CPU runs slower than fp32 would")
    return ModelChoice(model_path, given, "as named")


def tensorrt_options(
    choice: ModelChoice, asked: str, cache_dir: str | Path | None, fp16: bool
) -> dict[str, object]:
    """TensorRT provider options: fp16 (and int8 for Q/DQ models) and caches under ``cache_dir``.

    Engines go to ``cache_dir/<model sha256[:16]>-<engine precision>/`` (ONNX Runtime adds the GPU's
    compute capability to each engine's name), so another model, precision or GPU never reuses a wrong
    engine; the timing cache (per GPU, shared by all models) shortens the first build of every other.
    """
    int8 = choice.precision == "int8"  # explicit quantization: the Q/DQ scales, no calibration table
    half = bool(fp16) and asked != "fp32"  # the float layers (all of them, or an int8 model's head)
    options: dict[str, object] = {"trt_fp16_enable": half, "trt_int8_enable": int8}
    if cache_dir is not None:
        engine = "int8" if int8 else "fp16" if half else "fp32"
        engines = Path(cache_dir) / f"{file_digest(choice.path)[:16]}-{engine}"
        engines.mkdir(parents=True, exist_ok=True)
        options.update(
            trt_engine_cache_enable=True,
            trt_engine_cache_path=str(engines),
            trt_timing_cache_enable=True,
            trt_timing_cache_path=str(cache_dir),
        )
    return options


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks (models are tens of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
