"""Part A on a free Colab T4, computed: the peak RAM and GPU memory of each DeepFloyd step.

Each model is built on the meta device (no memory, no download) from IF's configurations in
``course_utils/assets/`` and its weights are counted as ``deepfloyd`` loads them: the same
``from_pretrained`` arguments decide the dtype, 8-bit or not, and whether the weights pass through
RAM.

The plan, in order (section 0, then every Part A notebook):
  1. T5-XXL straight to the GPU (8-bit with bitsandbytes), prompt embeddings to Drive, T5 freed;
  2. stage I straight to the GPU, fp16;
  3. stage II beside it on the GPU when the first upsampling asks for it.
Model CPU offload is what diffusers' guide suggests, but it keeps every offloaded UNet in RAM:
stage I and II together need 10.5 GiB there, on top of the kernel, over a free Colab's 12.7.

Not measured here (no GPU): the kernel's own RAM, the CUDA context and the activations are
allowances, written below with where each comes from.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from .. import ASSETS

GiB = 2 ** 30
CONFIGS = {"t5": "t5_v1_1_xxl_config.json", "stage_1": "if_i_xl_unet_config.json",
           "stage_2": "if_ii_l_unet_config.json"}


@dataclass(frozen=True)
class Machine:
    name: str
    ram: float   # bytes
    gpu: float


# Colab's resource panel: "System RAM 12.7 GB, GPU RAM 15.0 GB" (GiB: psutil and nvidia-smi agree)
FREE_T4 = Machine("free Colab T4", 12.7 * GiB, 15.0 * GiB)
# Allowances. Kernel: Python + torch + diffusers + transformers imported, plus the CUDA runtime
# (a fresh Colab kernel shows ~1.2 GiB; torch with CUDA initialised ~2.5 GiB): 3 GiB.
KERNEL_RAM = 3.0 * GiB
# CUDA context, cuBLAS/cuDNN workspaces and the caching allocator's slack.
CUDA_OVERHEAD = 1.0 * GiB
# Activations at batch 2 (CFG), generous: stage I's largest attention scores (32×32 level, 22 heads,
# 1024 × 1101 tokens, fp16) are 0.1 GiB; stage II's widest map at 256×256 (2 × 128 channels,
# fp16) 0.03 GiB, a few dozen of them alive at once; T5 sees 77 tokens.
ACTIVATIONS = {"t5": 0.25 * GiB, "stage_1": 1.0 * GiB, "stage_2": 1.5 * GiB}


@dataclass(frozen=True)
class Step:
    name: str
    ram: float
    gpu: float

    def fits(self, machine: Machine, margin: float) -> bool:
        return self.ram <= (1 - margin) * machine.ram and self.gpu <= (1 - margin) * machine.gpu

    def __str__(self):
        return f"{self.name}: RAM {self.ram / GiB:.1f} GiB, GPU {self.gpu / GiB:.1f} GiB"


def config(name: str) -> dict:
    data = json.loads((ASSETS / CONFIGS[name]).read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def meta_model(name: str) -> torch.nn.Module:
    """IF's T5-XXL encoder or stage I/II UNet, on the meta device: shapes only, no memory."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        if name == "t5":
            from transformers import T5Config, T5EncoderModel

            return T5EncoderModel(T5Config(**config("t5")))
        from diffusers import UNet2DConditionModel

        return UNet2DConditionModel.from_config(config(name))


def _dtype_bytes(kwargs: dict) -> int:
    dtype = kwargs.get("dtype", kwargs.get("torch_dtype", torch.float32))
    return torch.finfo(dtype).bits // 8


def weight_bytes(model: torch.nn.Module, load_kwargs: dict) -> tuple[float, float]:
    """(total, largest single tensor) in bytes, as ``from_pretrained(**load_kwargs)`` stores them.

    8-bit (bitsandbytes) stores Linear weights in one byte, except the modules the model keeps in
    fp32 (T5's ``wo``: transformers skips them when quantizing), which stay four bytes."""
    size = _dtype_bytes(load_kwargs)
    int8 = "quantization_config" in load_kwargs
    keep_fp32 = tuple(getattr(model, "_keep_in_fp32_modules", None) or ())
    total = largest = 0
    for module_name, module in model.named_modules():
        fp32 = keep_fp32 and module_name.split(".")[-1] in keep_fp32 and size < 4
        for param_name, p in module.named_parameters(recurse=False):
            if fp32:
                b = 4
            elif int8 and isinstance(module, torch.nn.Linear) and param_name == "weight":
                b = 1
            else:
                b = size
            total += p.numel() * b
            largest = max(largest, p.numel() * b)
    return total, largest


def free_t4_plan(t5_kwargs: dict, stage_kwargs: dict) -> list[Step]:
    """Peak RAM and GPU memory of each step, with the given from_pretrained arguments."""
    t5, t5_big = weight_bytes(meta_model("t5"), t5_kwargs)
    s1, s1_big = weight_bytes(meta_model("stage_1"), stage_kwargs)
    s2, s2_big = weight_bytes(meta_model("stage_2"), stage_kwargs)
    # With a device_map the weights go tensor by tensor to the GPU; without, the whole model is
    # in RAM first.
    t5_ram = t5_big if "device_map" in t5_kwargs else t5
    s1_ram, s2_ram = (s1_big, s2_big) if "device_map" in stage_kwargs else (s1, s2)
    return [
        Step("1. T5-XXL embeds the prompts", KERNEL_RAM + t5_ram, CUDA_OVERHEAD + t5 + ACTIVATIONS["t5"]),
        Step("2. T5 freed, stage I samples", KERNEL_RAM + s1_ram, CUDA_OVERHEAD + s1 + ACTIVATIONS["stage_1"]),
        Step("3. stage II upsamples beside stage I", KERNEL_RAM + s2_ram,
             CUDA_OVERHEAD + s1 + s2 + ACTIVATIONS["stage_2"]),
    ]


def offload_plan(stage_kwargs: dict) -> Step:
    """The rejected alternative: both stages with model CPU offload (every UNet kept in RAM)."""
    s1, _ = weight_bytes(meta_model("stage_1"), stage_kwargs)
    s2, _ = weight_bytes(meta_model("stage_2"), stage_kwargs)
    return Step("stage I and II with CPU offload", KERNEL_RAM + s1 + s2,
                CUDA_OVERHEAD + max(s1, s2) + ACTIVATIONS["stage_2"])
