"""What can run here and why not: the answers behind `interactive-doctor`.

A GPU stack fails in layers (a CPU-only torch, onnxruntime and onnxruntime-gpu installed together, a
TensorRT wheel without its libraries, TensorRT for CUDA 13 on a driver that stops at CUDA 12, no GPU at
all), and each layer's own error rarely names the next. Like `polygraphy` or `trtexec --version`, this
probes each piece on its own, lazily (nothing heavy is imported with this module), and says its version or
the one-line reason it cannot be used; then, per backend, whether it runs here. The same checks guard
`interactive-export --trt` and the test markers (exporter.tensorrt.preflight).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata

from interactive_trt.common.errors import InterActiveError
from interactive_trt.common.extras import install

DRIVER_FOR_CUDA = {13: "580", 12: "525"}  # the oldest Linux driver branch each CUDA major runs on


@dataclass
class Component:
    name: str
    ok: bool
    version: str = ""
    detail: str = ""  # what was found, or why it cannot be used


@dataclass
class Backend:
    name: str
    ok: bool
    reason: str = ""  # why not, when it cannot run here


@dataclass
class Diagnosis:
    components: list[Component] = field(default_factory=list)
    backends: list[Backend] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"components": [asdict(c) for c in self.components], "backends": [asdict(b) for b in self.backends]}


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def installed_version(*names: str) -> tuple[str, str] | None:
    """(distribution, version) of the first of `names` that pip has installed."""
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def cuda_major_of(distribution: str | None) -> int | None:
    """12 for tensorrt-cu12 and its bindings, 13 for tensorrt-cu13; None when the name does not say."""
    if distribution and "-cu" in distribution:
        digits = distribution.split("-cu", 1)[1].split("-", 1)[0]
        return int(digits) if digits.isdigit() else None
    return None


# ---------------------------------------------------------------- probes
def probe_onnxruntime() -> tuple[Component, list[str]]:
    from interactive_trt.common import ort

    try:
        module = ort.import_onnxruntime()
    except InterActiveError as exc:
        return Component("onnxruntime", False, detail=str(exc)), []
    providers = list(module.get_available_providers())
    packages = ort.installed_packages()
    hint = ort.both_installed_hint()
    detail = f"{' + '.join(packages) or 'package unknown'}; providers: {', '.join(providers)}"
    return Component("onnxruntime", hint is None, module.__version__, f"{detail}; {hint}" if hint else detail), providers


def probe_torch() -> tuple[Component, Component]:
    from interactive_trt.exporter.public import torch_cuda_problem

    try:
        import torch
    except (ImportError, OSError) as exc:
        reason = f"not importable ({first_line(exc)}): {install('export')}"
        return Component("torch", False, detail=reason), Component("torch CUDA", False, detail=reason)
    build = "CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    problem = torch_cuda_problem()
    if problem:
        return Component("torch", True, torch.__version__, build), Component("torch CUDA", False, detail=problem)
    major, minor = torch.cuda.get_device_capability(0)
    seen = f"{torch.cuda.get_device_name(0)} (sm {major}.{minor}), {torch.cuda.device_count()} device(s)"
    return Component("torch", True, torch.__version__, build), Component("torch CUDA", True, torch.version.cuda, seen)


def probe_openvino() -> tuple[Component, list[str]]:
    """OpenVINO and what its CPU plugin offers: the CPU backend, and bf16 where the CPU has it."""
    from interactive_trt.forms import openvino as ov_runtime

    try:
        core = ov_runtime.openvino().Core()
        devices = [str(device) for device in core.available_devices]
        capabilities = ov_runtime.cpu_capabilities(core) if "CPU" in devices else []
    except InterActiveError as exc:
        return Component("openvino", False, detail=str(exc)), []
    except Exception as exc:  # noqa: BLE001 - a plugin that fails to load raises OpenVINO's own errors
        return Component("openvino", False, detail=f"installed, but its CPU plugin fails: {first_line(exc)}"), []
    detail = f"devices: {', '.join(devices) or 'none'}; CPU: {', '.join(capabilities) or 'no capabilities'}"
    return Component("openvino", "CPU" in devices, ov_runtime.version().split("-")[0], detail), capabilities


def probe_tensorrt() -> tuple[Component, int | None]:
    from interactive_trt.exporter.public import tensorrt

    installed = installed_version("tensorrt-cu13-bindings", "tensorrt-cu12-bindings", "tensorrt-cu13",
                                  "tensorrt-cu12", "tensorrt")
    major = cuda_major_of(installed[0] if installed else None)
    try:
        trt = tensorrt()
    except InterActiveError as exc:
        return Component("tensorrt", False, detail=str(exc)), major
    detail = f"{installed[0]} (CUDA {major})" if installed and major else (installed[0] if installed else "")
    return Component("tensorrt", True, trt.__version__, detail), major


def probe_cuda_python() -> tuple[Component, int | None]:
    """cuda-python and, through it, the CUDA version the driver supports (cudaDriverGetVersion)."""
    from interactive_trt.exporter.public import call, cudart

    installed = installed_version("cuda-python", "cuda-bindings")
    try:
        runtime = cudart()
        driver = int(call("cudaDriverGetVersion", runtime.cudaDriverGetVersion()))
    except InterActiveError as exc:
        return Component("cuda-python", False, installed[1] if installed else "", str(exc)), None
    cuda = f"the driver supports CUDA {driver // 1000}.{driver % 1000 // 10}" if driver else "no driver"
    return Component("cuda-python", True, installed[1] if installed else "", cuda), driver or None


def probe_gpu() -> Component:
    """The GPU as cuda-python sees it (what engines are keyed by), else as nvidia-smi does."""
    from interactive_trt.exporter.public import gpu_identity

    try:
        name, compute_capability = gpu_identity()
        return Component("GPU", True, detail=f"{name} (sm {compute_capability})")
    except InterActiveError:
        pass  # cuda-python's own row says why it cannot look
    smi = nvidia_smi()
    if smi:
        return Component("GPU", True, detail=f"{smi['name']} (sm {smi['compute_cap']}), seen by nvidia-smi")
    where = "nvidia-smi lists none" if shutil.which("nvidia-smi") else "no nvidia-smi on PATH"
    return Component("GPU", False, detail=f"none seen ({where}, and cuda-python sees none)")


def nvidia_smi() -> dict | None:
    """name, driver_version, compute_cap of the first GPU by nvidia-smi; None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        return None
    parts = [part.strip() for part in lines[0].split(",")]
    return dict(zip(("name", "driver_version", "compute_cap"), parts)) if len(parts) == 3 else None


def probe_driver(driver_cuda: int | None) -> Component:
    smi = nvidia_smi()
    if smi:
        return Component("NVIDIA driver", True, smi["driver_version"], "from nvidia-smi")
    if driver_cuda:
        return Component("NVIDIA driver", True, detail=f"supports CUDA {driver_cuda // 1000}.{driver_cuda % 1000 // 10}")
    return Component("NVIDIA driver", False, detail="not found (no nvidia-smi, and cuda-python cannot ask)")


def stack_problem(tensorrt_cuda: int | None, cuda_python: Component, driver_cuda: int | None) -> str | None:
    """TensorRT, cuda-python and the driver must agree on the CUDA major."""
    if tensorrt_cuda is None:
        return None
    python_major = int(cuda_python.version.split(".")[0]) if cuda_python.version[:2].isdigit() else None
    if python_major is not None and python_major != tensorrt_cuda:
        return (f"TensorRT is built for CUDA {tensorrt_cuda} but cuda-python is {cuda_python.version}: install "
                f"the pair from one extra (gpu for CUDA 13, gpu-cu12 for CUDA 12)")
    if driver_cuda and driver_cuda // 1000 < tensorrt_cuda:
        return (f"TensorRT is built for CUDA {tensorrt_cuda}, the driver supports CUDA {driver_cuda // 1000}."
                f"{driver_cuda % 1000 // 10}: update the driver to >= {DRIVER_FOR_CUDA.get(tensorrt_cuda, '?')} "
                f"or {install('gpu-cu12')}")
    return None


# ---------------------------------------------------------------- verdict
def diagnose() -> Diagnosis:
    from interactive_trt.exporter.public import tensorrt_problem

    ort_found, providers = probe_onnxruntime()
    torch_found, torch_cuda = probe_torch()
    openvino_found, openvino_capabilities = probe_openvino()
    trt_found, trt_cuda = probe_tensorrt()
    cuda_found, driver_cuda = probe_cuda_python()
    gpu, driver = probe_gpu(), probe_driver(driver_cuda)
    found = [ort_found, torch_found, torch_cuda, openvino_found, trt_found, cuda_found, gpu, driver]
    mismatch = stack_problem(trt_cuda, cuda_found, driver_cuda)
    if mismatch:
        found.append(Component("CUDA stack", False, detail=mismatch))

    def ort_cuda_reason() -> str:
        if not ort_found.version:
            return ort_found.detail
        from interactive_trt.common.ort import both_installed_hint

        return both_installed_hint() or ("this ONNX Runtime has no CUDA provider: "
                                         + install("gpu", "onnxruntime-gpu, instead of the cpu extra"))

    trt_reason = tensorrt_problem() or mismatch
    backends = [
        Backend("onnxruntime --device cpu", "CPUExecutionProvider" in providers,
                "" if "CPUExecutionProvider" in providers else ort_found.detail),
        Backend("onnxruntime --device cuda", "CUDAExecutionProvider" in providers,
                "" if "CUDAExecutionProvider" in providers else ort_cuda_reason()),
        Backend("torch --device cpu", torch_found.ok, "" if torch_found.ok else torch_found.detail),
        Backend("torch --device cuda", torch_cuda.ok, "" if torch_cuda.ok else torch_cuda.detail),
        Backend("openvino --device cpu", openvino_found.ok, "" if openvino_found.ok else openvino_found.detail),
        Backend("openvino --precision bf16", "BF16" in openvino_capabilities,
                "" if "BF16" in openvino_capabilities else openvino_found.detail if not openvino_found.ok
                else "this CPU has no bfloat16 support (OpenVINO reports no BF16 capability)"),
        Backend("tensorrt", trt_reason is None, trt_reason or ""),
    ]
    export_reason = trt_reason or (None if torch_cuda.ok else f"engine verification needs torch on the GPU: "
                                   f"{torch_cuda.detail}")
    backends.append(Backend("interactive-export --trt (verified)", export_reason is None, export_reason or ""))
    return Diagnosis(found, backends)
