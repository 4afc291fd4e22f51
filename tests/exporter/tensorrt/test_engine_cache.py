"""The engine cache's logic without a GPU: the builder is a stand-in that records its calls, so what
is tested is keying, reuse, rebuild of damaged files, and that concurrent processes build once."""

import multiprocessing
import time

from interactive_trt.contracts.engine_file import read_engine
from interactive_trt.exporter.tensorrt.cache import EngineCache, Platform

PLATFORM = Platform("10.9.0", "NVIDIA H100 80GB HBM3", "9.0")


def make_cache(folder, calls_file, delay=0.0):
    def builder(key):
        with open(calls_file, "a") as handle:
            handle.write(f"{key.height}x{key.width}\n")
        time.sleep(delay)
        return f"plan for {key.height}x{key.width}".encode() * 100

    return EngineCache(folder, "vgg19_last_p2_both", "ab" * 32, PLATFORM, "fp16", 1, 8, builder)


def calls(calls_file):
    return calls_file.read_text().splitlines() if calls_file.exists() else []


def test_built_once_then_reused_and_damaged_files_rebuilt(tmp_path):
    log = tmp_path / "calls"
    cache = make_cache(tmp_path / "engines", log)
    path, plan = cache.get(512, 512)
    assert plan.startswith(b"plan for 512x512") and calls(log) == ["512x512"]
    assert read_engine(path, expected=cache.key(512, 512))[1] == plan
    assert cache.get(512, 512)[1] == plan and calls(log) == ["512x512"]
    cache.get(448, 576)
    assert calls(log) == ["512x512", "448x576"]
    path.write_bytes(path.read_bytes()[:-10])  # truncated on disk: rebuilt, not loaded
    assert cache.get(512, 512)[1] == plan and calls(log) == ["512x512", "448x576", "512x512"]
    other_gpu = EngineCache(tmp_path / "engines", "vgg19_last_p2_both", "ab" * 32,
                            Platform("10.9.0", "NVIDIA A100", "8.0"), "fp16", 1, 8, lambda key: b"a100")
    assert other_gpu.get(512, 512)[1] == b"a100"  # another GPU's engine is another file
    assert len(list((tmp_path / "engines").glob("*.engine"))) == 3


def _worker(folder, calls_file, results, index):
    path, plan = make_cache(folder, calls_file, delay=1.0).get(512, 512)
    results[index] = plan


def test_concurrent_processes_build_an_engine_once(tmp_path):
    log = tmp_path / "calls"
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    results = manager.dict()
    processes = [context.Process(target=_worker, args=(tmp_path / "engines", log, results, i)) for i in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert calls(log) == ["512x512"]
    assert len(set(results.values())) == 1 and len(results) == 3
