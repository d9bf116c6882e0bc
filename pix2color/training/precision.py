"""The floating-point precision a run trains in: the choices, what `auto` picks, and networks built,
copied and saved for it.

- float32: every op in float32, the report's.
- bfloat16: layers compute in bfloat16 (Keras' `mixed_bfloat16` policy): faster where the
  hardware computes it natively (CPUs with AVX512_BF16 or AMX, TPUs, GPUs of compute capability
  8.0 and up), slower where TensorFlow has to emulate it. bfloat16 has float32's exponent
  range, so nothing underflows and no loss scaling is needed; its 8-bit mantissa rounds each
  op's result to about 2^-9 of its value, so what sums many small terms stays in float32: the
  variables and the optimizer state, G's output and D's logits (the losses are computed from
  them), BatchNorm's statistics (Keras computes them in float32 from bfloat16 inputs), R1's
  squared gradient norm, and the random draws of dropout and noise.
- float16: layers compute in float16 with loss scaling (`mixed_float16`), for GPUs older than
  compute capability 8.0, which have float16 units but no bfloat16 ones.
- auto: bfloat16 where the hardware computes it natively, float16 on older GPUs, float32
  elsewhere (`choose`).

Whatever a run trains in, what it saves (generator.keras) and everything made from that
(colorize, serve, video, the exports) is float32: `float32_layers`.

This module imports no TensorFlow at the top: the command line checks --precision without it,
and `choose` decides from facts passed in, so tests can fake any machine.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("float32", "bfloat16", "float16", "auto")
MIXED_POLICIES = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}  # Keras' dtype policies
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bfloat16 arithmetic
BFLOAT16_GPU_CAPABILITY = (8, 0)  # Ampere and newer have bfloat16 tensor cores


@dataclass(frozen=True)
class Devices:
    """What `auto` looks at: the CPU's feature flags, each GPU's compute capability, a TPU."""

    cpu_flags: frozenset = frozenset()
    gpu_capabilities: tuple = ()  # (major, minor) of each GPU the run trains on
    tpu: bool = False


@dataclass(frozen=True)
class Choice:
    precision: str  # float32, bfloat16 or float16
    reason: str  # why `auto` chose it, in plain words, for the line a run prints at start ("" if asked)


def choose(devices: Devices) -> Choice:
    """`auto`'s pick for the devices a run trains on: a TPU, else the GPUs, else the CPU."""
    if devices.tpu:
        return Choice("bfloat16", "auto: a TPU computes matrix products in bfloat16")
    if devices.gpu_capabilities:
        oldest = min(devices.gpu_capabilities)
        name = f"compute capability {oldest[0]}.{oldest[1]}"
        if oldest >= BFLOAT16_GPU_CAPABILITY:
            return Choice("bfloat16", f"auto: GPUs of {name} compute in bfloat16")
        return Choice("float16", f"auto: a GPU of {name} has no bfloat16 units; float16 with loss scaling")
    found = [flag for flag in BFLOAT16_CPU_FLAGS if flag in devices.cpu_flags]
    if found:
        return Choice("bfloat16", f"auto: this CPU has {' and '.join(found)}")
    return Choice("float32", "auto: no TPU, no GPU, and this CPU has neither avx512_bf16 nor amx_bf16")


def resolve(requested: str, devices: Devices | None = None, recorded: str | None = None) -> Choice:
    """The precision a run trains in: the one asked for; for `auto`, the one a resumed run was
    started with (`recorded`), or `choose`'s for `devices`."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {requested!r})")
    if requested != "auto":
        return Choice(requested, "")
    if recorded is not None:
        return Choice(recorded, "auto: the precision this run was started with")
    return choose(devices or Devices())


def recorded_precision(settings: dict) -> str:
    """The precision a run.json records; one without `precision` says `mixed_precision` true
    (float16) or false or nothing (float32)."""
    if "precision" in settings:
        return settings["precision"]
    return "float16" if settings.get("mixed_precision") else "float32"


def cpu_flags(cpuinfo: str) -> frozenset:
    """The feature flags of a /proc/cpuinfo text (every core lists the same)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def this_machine(strategy=None) -> Devices:
    """The devices `strategy` (default: the current one) trains on, as `choose` needs them."""
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return Devices(tpu=True)
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        capabilities.append(tuple(capability) if capability else (0, 0))  # unknown: treated as old
    try:
        flags = cpu_flags(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))
    except OSError:  # not Linux: no flags to read, so no bfloat16 CPU is assumed
        flags = frozenset()
    return Devices(cpu_flags=flags, gpu_capabilities=tuple(capabilities))


@contextlib.contextmanager
def building_for(precision: str):
    """Keras' global dtype policy for networks that compute in `precision`, while they are built;
    the policy before is restored after, so one process can build float32 and bfloat16 networks
    in turn. float32 keeps the caller's policy (float64 in the exactness tests) unless it is a
    mixed one."""
    import keras

    before = keras.config.dtype_policy()
    if precision in MIXED_POLICIES:
        keras.config.set_dtype_policy(MIXED_POLICIES[precision])
    elif precision == "float32" and before.name.startswith("mixed"):
        keras.config.set_dtype_policy("float32")
    elif precision != "float32":
        raise ValueError(f"cannot build networks for precision {precision!r} (resolve `auto` first)")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def computing_in(model, precision: str):
    """A copy of `model`, every variable's value copied, whose layers compute in `precision`
    (float32, bfloat16 or float16). The variables stay float32, and under a 16-bit precision the
    layers that make the model's outputs compute in float32, as `networks` builds them."""
    import keras

    policy = MIXED_POLICIES.get(precision, precision)
    if policy not in ("float32", *MIXED_POLICIES.values()):
        raise ValueError(f"cannot compute in {precision!r}")
    outputs = set(model.output_names)

    def recast(layer):
        config = layer.get_config()
        config["dtype"] = "float32" if layer.name in outputs else policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=recast, recursive=True)
    copy.name = model.name
    if len(copy.variables) != len(model.variables):
        raise ValueError(f"{model.name}: its copy has {len(copy.variables)} variables, not {len(model.variables)}")
    for target, source in zip(copy.variables, model.variables):
        target.assign(source)
    return copy


def float32_layers(model):
    """`model` as runs save it: every layer computing in float32 (a copy, if any layer computes in
    bfloat16 or float16), whatever the run trained in, so that colorize, serve, video and the
    exports never compute in another precision unasked. Networks without a 16-bit layer are
    returned as they are (float64 ones too, in the exactness tests)."""
    if not any(name.startswith("mixed") for name in layer_precisions(model)):
        return model
    return computing_in(model, "float32")


def layer_precisions(model) -> set[str]:
    """The names of the dtype policies of `model`'s layers, nested models' layers included."""
    return {layer.dtype_policy.name for layer in _all_layers(model)}


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
