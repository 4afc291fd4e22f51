"""Freed memory kept in the process (interactive_trt.common.memory): the page faults it spares a torch
pass on the CPU, counted, and who turns it on (the torch backend on the CPU, unless asked not to or the
user set glibc's own thresholds)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from interactive_trt.common import memory

FAULTS = """
import resource, sys, threading
import torch
from interactive_trt.common.memory import keep_freed_memory
kept = sys.argv[1] == "keep" and keep_freed_memory()
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, 8, 3, padding=1))
image = torch.randn(1, 3, 512, 512, requires_grad=True)  # 64 channels of 512x512: 64 MiB maps


def call():  # a forward and a backward pass, as autograd and the torch backend make them
    torch.autograd.grad(net(image).sum(), image)


def calls(count):  # from the main thread, or from a worker thread as a server's pool calls a runner
    if sys.argv[2] == "main":
        for _ in range(count):
            call()
    else:
        worker = threading.Thread(target=lambda: [call() for _ in range(count)])
        worker.start()
        worker.join()


calls(3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
calls(5)
print(int(kept), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def clean_environment() -> dict:
    mine = (*memory.GLIBC_VARIABLES, memory.ARENAS_VARIABLE)
    return {name: value for name, value in os.environ.items() if name not in mine}


def faults(allocator: str, caller: str) -> tuple[bool, int]:
    done = subprocess.run([sys.executable, "-c", FAULTS, allocator, caller], capture_output=True, text=True,
                          timeout=120, env=clean_environment())
    assert done.returncode == 0, done.stderr[-2000:]
    kept, count = map(int, done.stdout.split())
    return bool(kept), count


@pytest.mark.parametrize("caller", ["main", "thread"])
def test_kept_memory_spares_a_torch_pass_its_page_faults(caller):
    """Without it every 64 MiB map is faulted in anew on each call; with it the pages are reused, as the
    runtimes reuse their arenas. From a worker thread too, and from the main thread while torch's own
    threads allocate some of the maps: the thresholds alone left those to a thread's arena, which maps
    each 64 MiB block anew (every call from a worker thread; one or two maps in five calls from the main
    thread, under load). With it, a heap that still grows by fragmentation under a full suite's load has
    faulted up to 2.25 maps' pages in five calls from the main thread (36,864 of 663,560, 2026-12-07):
    three calls warm it up, and 10% of the faults without it are allowed; a regression faults them all."""
    if memory.c_function("mallopt") is None:
        pytest.skip("this C library has no mallopt (not glibc): the system's allocator stays as it is")
    kept, with_keep = faults("keep", caller)
    assert kept
    _, with_system = faults("system", caller)
    pages_per_map = (64 << 20) // 4096
    assert with_system >= 5 * pages_per_map
    assert with_keep <= 0.10 * with_system


PROBE = """
import sys
from interactive_trt.runtime.backends import make_runner
from interactive_trt.runtime.inference.model import load_model
with make_runner("torch", load_model(sys.argv[1]), device="cpu", keep_memory=sys.argv[2] == "1") as runner:
    print(int(runner.memory_kept))
"""


@pytest.mark.parametrize("keep, variable, expected", [(True, None, True), (False, None, False),
                                                       (True, "MALLOC_MMAP_THRESHOLD_", False)])
def test_the_torch_backend_keeps_memory_on_the_cpu_unless_told_otherwise(small_model, keep, variable, expected):
    environment = clean_environment()
    if variable:
        environment[variable] = "262144"  # the user's own choice, which stands
    done = subprocess.run([sys.executable, "-c", PROBE, str(small_model), str(int(keep))], capture_output=True,
                          text=True, timeout=300, env=environment)
    assert done.returncode == 0, done.stderr[-2000:]
    if expected and memory.c_function("mallopt") is None:
        pytest.skip("this C library has no mallopt (not glibc): nothing to keep")
    assert done.stdout.split()[-1] == str(int(expected))



RETURNED = """
import ctypes, sys
from interactive_trt.common import memory


def anonymous_mib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024


if sys.argv[1] == "keep":
    assert memory.keep_freed_memory()
malloc = ctypes.CDLL("libc.so.6").malloc
malloc.restype = ctypes.c_void_p
free = ctypes.CDLL("libc.so.6").free
free.argtypes = [ctypes.c_void_p]
blocks = [malloc(64 << 10) for _ in range(4096)]  # 256 MiB in blocks under glibc's mmap threshold
for block in blocks:
    ctypes.memset(block, 1, 64 << 10)
top = malloc(64 << 10)  # a live block above them, from the heap's top: glibc's own trimming stops at it
for block in blocks:
    free(block)
before = anonymous_mib()
memory.return_freed_memory()
print(before - anonymous_mib())
"""


@pytest.mark.parametrize("allocator", ["system", "keep"])
def test_freed_memory_goes_back_between_stages_unless_kept(allocator):
    """What an export stage frees goes back to the system before the next stage (issue 24's peak), except
    where the process keeps freed memory on purpose."""
    if memory.c_function("malloc_trim") is None:
        pytest.skip("this C library has no malloc_trim (not glibc)")
    done = subprocess.run([sys.executable, "-c", RETURNED, allocator], capture_output=True, text=True, timeout=120,
                          env=clean_environment())
    assert done.returncode == 0, done.stderr[-2000:]
    returned = float(done.stdout.split()[-1])
    if allocator == "system":
        assert returned > 200, f"{returned} MiB returned of 256 freed"
    else:
        assert returned < 16, f"{returned} MiB returned where freed memory is kept"
