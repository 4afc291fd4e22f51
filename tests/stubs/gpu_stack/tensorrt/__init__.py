"""Stand-in for NVIDIA's `tensorrt` package: the part of TensorRT 11.1's Python API that this project calls,
with the same names, arguments and return conventions (None for a failed deserialization, False for a
refused shape or timing cache), for CPU tests of the code around TensorRT (see tests/stubs/README.md).

A plan is JSON describing one engine: input `image` of 3 x H x W with a batch range, and outputs that are
each image's mean (N x 1; named `mean` unless `plan_for` is told otherwise) or twice the image (N x 3 x H x W;
`double`). Activations take ACTIVATION_BYTES_PER_IMAGE per image.
"""

from __future__ import annotations

import enum
import json

import numpy as np
from cuda.bindings import runtime as _cudart

__version__ = "11.1.0"
PLATFORM = "TensorRT 11.1.0 on NVIDIA Stub GPU sm 9.0"  # what a real timing cache's header pins
LOGGERS: list = []  # every Logger made in this process
ACTIVATION_BYTES_PER_IMAGE = 1 << 20
WEIGHT_BYTES = 3 << 20


class Logger:
    VERBOSE, INFO, WARNING, ERROR, INTERNAL_ERROR = 4, 3, 2, 1, 0

    def __init__(self, min_severity=WARNING):
        self.min_severity = min_severity
        LOGGERS.append(self)


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT32 = 3
    BOOL = 4


def nptype(trt_type):
    return {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT32: np.int32,
            DataType.BOOL: np.bool_}[trt_type]


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class ExecutionContextAllocationStrategy(enum.IntEnum):
    STATIC = 0
    ON_PROFILE_CHANGE = 1
    USER_MANAGED = 2


_USER_MANAGED = ExecutionContextAllocationStrategy.USER_MANAGED  # tests may delete the enum (TensorRT < 10)


class BuilderFlag(enum.IntEnum):  # TensorRT 11 has no FP16/BF16 flags: networks are strongly typed
    TF32 = 6


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class NetworkDefinitionCreationFlag(enum.IntEnum):
    STRONGLY_TYPED = 0  # deprecated and ignored in TensorRT 11


class EngineStat(enum.IntEnum):
    TOTAL_WEIGHTS_SIZE = 0


class IProgressMonitor:
    def __init__(self):
        pass


# ---------------------------------------------------------------- building
class ITimingCache:
    def __init__(self, entries: dict, platform: str = PLATFORM):
        self.entries, self.platform = dict(entries), platform

    def combine(self, input_cache, ignore_mismatch):
        if input_cache.platform != self.platform and not ignore_mismatch:
            return False
        for key, value in input_cache.entries.items():
            self.entries.setdefault(key, value)
        return True

    def serialize(self):
        return json.dumps({"stub-timing-cache": self.platform, "entries": self.entries}).encode()


class IOptimizationProfile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, min, opt, max):
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class IBuilderConfig:
    def __init__(self):
        self.flags = {BuilderFlag.TF32}  # on by default, as in TensorRT
        self.pools, self.profiles, self.timing_cache, self.progress_monitor = {}, [], None, None

    def set_flag(self, flag):
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.flags.discard(flag)

    def get_flag(self, flag):
        return flag in self.flags

    def set_memory_pool_limit(self, pool, pool_size):
        self.pools[pool] = pool_size

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache):
        blob = bytes(serialized_timing_cache)
        if not blob:
            return ITimingCache({})
        try:
            data = json.loads(blob)
            return ITimingCache(data["entries"], data["stub-timing-cache"])
        except (ValueError, KeyError, TypeError):
            return None  # TensorRT logs an error and returns a null cache

    def set_timing_cache(self, cache, ignore_mismatch):
        if cache.platform != PLATFORM and not ignore_mismatch:
            return False
        self.timing_cache = cache
        return True

    def get_timing_cache(self):
        return self.timing_cache


class INetworkDefinition:
    def __init__(self, flags):
        self.flags = flags


class OnnxParser:
    def __init__(self, network, logger):
        self.network, self.num_errors = network, 0

    def parse_from_file(self, path):
        return True

    def get_error(self, index):
        return "stub"


class Builder:
    def __init__(self, logger):
        self.logger = logger
        self.built: list[IBuilderConfig] = []

    def create_network(self, flags=0):
        return INetworkDefinition(flags)

    def create_builder_config(self):
        return IBuilderConfig()

    def create_optimization_profile(self):
        return IOptimizationProfile()

    def build_serialized_network(self, network, config):
        """A plan for the first profile's shapes; records a 'tactic timing' for them in the timing cache."""
        self.built.append(config)
        (name, (low, opt, high)), = config.profiles[0].shapes.items()
        if config.timing_cache is not None:
            config.timing_cache.entries.setdefault(f"conv {low[1:]} opt {opt[0]}", 1.0)
        return plan_for(name, low[1:], low[0], opt[0], high[0])


def plan_for(input_name, shape, low, opt, high, mean="mean", double="double") -> bytes:
    """A plan whose output `mean` holds each image's mean and `double` twice the image."""
    outputs = {mean: {"shape": [1], "fn": "mean"}, double: {"shape": list(shape), "fn": "double"}}
    return json.dumps({"stub": "tensorrt-plan", "input": input_name, "shape": list(shape), "min": low, "opt": opt,
                       "max": high, "outputs": outputs}).encode()


# ---------------------------------------------------------------- running
class Runtime:
    def __init__(self, logger):
        self.logger = logger

    def deserialize_cuda_engine(self, serialized_engine):
        try:
            spec = json.loads(bytes(serialized_engine))
            assert spec["stub"] == "tensorrt-plan"
        except (ValueError, KeyError, AssertionError):
            return None
        return ICudaEngine(spec)


class ICudaEngine:
    def __init__(self, spec):
        self.spec = spec
        self.names = [spec["input"], *spec["outputs"]]
        self.num_io_tensors = len(self.names)
        self.contexts: list[IExecutionContext] = []

    def get_tensor_name(self, index):
        return self.names[index]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name == self.spec["input"] else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return DataType.FLOAT

    @property
    def device_memory_size_v2(self):
        return ACTIVATION_BYTES_PER_IMAGE * self.spec["max"]

    def get_engine_stat(self, stat=EngineStat.TOTAL_WEIGHTS_SIZE):
        return WEIGHT_BYTES

    def create_execution_context(self, strategy=0):  # STATIC
        context = IExecutionContext(self, strategy)
        self.contexts.append(context)
        return context


class IExecutionContext:
    def __init__(self, engine, strategy):
        self.engine, self.strategy = engine, strategy
        self.input_shape, self.addresses, self.device_memory = None, {}, None
        self.executions = 0

    def set_input_shape(self, name, shape):
        spec = self.engine.spec
        shape = tuple(int(side) for side in shape)
        if name != spec["input"] or shape[1:] != tuple(spec["shape"]) or not spec["min"] <= shape[0] <= spec["max"]:
            return False
        self.input_shape = shape
        return True

    def get_tensor_shape(self, name):
        spec = self.engine.spec
        batch = self.input_shape[0] if self.input_shape else -1
        if name == spec["input"]:
            return (batch, *spec["shape"])
        return (batch, *spec["outputs"][name]["shape"])

    def set_tensor_address(self, name, memory):
        self.addresses[name] = int(memory)
        return True

    def update_device_memory_size_for_shapes(self):
        return 0 if self.input_shape is None else ACTIVATION_BYTES_PER_IMAGE * self.input_shape[0]

    def set_device_memory(self, memory, size):
        self.device_memory = (int(memory), int(size))

    def execute_async_v3(self, stream_handle):
        """Reads the input from device memory and writes the outputs, as the engine would on `stream_handle`."""
        spec = self.engine.spec
        if self.input_shape is None or set(self.addresses) != set(self.engine.names):
            return False
        if self.strategy == _USER_MANAGED:
            if self.device_memory is None or self.device_memory[1] < self.update_device_memory_size_for_shapes():
                return False
            _cudart.device_view(*self.device_memory)  # ValueError if freed or too small
        batch = self.input_shape[0]
        count = int(np.prod(self.input_shape))
        image = np.frombuffer(_cudart.device_view(self.addresses[spec["input"]], 4 * count), np.float32)
        image = image.reshape(self.input_shape)
        functions = {"mean": image.reshape(batch, -1).mean(axis=1, keepdims=True), "double": 2 * image}
        for name, output in spec["outputs"].items():
            data = np.ascontiguousarray(functions[output["fn"]], dtype=np.float32).tobytes()
            _cudart.device_view(self.addresses[name], len(data))[:] = data
        self.executions += 1
        return True
