"""Part A fits a free Colab T4: each step's peak RAM and GPU memory, computed from IF's real model
shapes (built on the meta device) and from the very from_pretrained arguments deepfloyd uses."""
import importlib.util

import pytest
import torch

from course_utils.part_a import deepfloyd, memory_plan
from course_utils.part_a.memory_plan import FREE_T4, GiB

MARGIN = 0.10   # each step keeps 10% of RAM and of GPU memory free


@pytest.fixture
def on_a_gpu(monkeypatch):
    """deepfloyd's arguments as a CUDA machine gets them: diffusers lists "cuda" as a device_map
    there (it is the current device), and bitsandbytes is installed by the extra on Linux."""
    from diffusers.pipelines import pipeline_utils

    monkeypatch.setattr(pipeline_utils, "SUPPORTED_DEVICE_MAP", ["balanced", "cuda", "cpu"])
    real = importlib.util.find_spec

    def with_bitsandbytes(installed):
        def find_spec(name, *args):
            if name == "bitsandbytes":
                return object() if installed else None
            return real(name, *args)
        monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    return with_bitsandbytes


@pytest.mark.parametrize("name, published", [("t5", 4.76e9), ("stage_1", 4.3e9), ("stage_2", 1.2e9)])
def test_configs_have_the_published_sizes(name, published):
    n = sum(p.numel() for p in memory_plan.meta_model(name).parameters())
    assert abs(n / published - 1) < 0.05, f"{name}: {n / 1e9:.2f}B parameters, published {published / 1e9}B"


def test_loading_arguments_are_the_planned_ones(on_a_gpu):
    cuda = torch.device("cuda")
    on_a_gpu(True)
    stage = deepfloyd.stage_load_kwargs(cuda)
    assert stage["tokenizer"] is None and stage["text_encoder"] is None   # no T5, no protobuf needed
    assert stage["variant"] == "fp16" and stage["device_map"] == "cuda"
    assert list(deepfloyd.dtype_kwarg("diffusers", torch.float16).values()) == [torch.float16]
    assert stage.get("dtype", stage.get("torch_dtype")) == torch.float16
    t5 = deepfloyd.text_encoder_load_kwargs(cuda)
    assert t5["quantization_config"].load_in_8bit and t5["device_map"] == {"": "cuda"}
    on_a_gpu(False)
    assert "quantization_config" not in deepfloyd.text_encoder_load_kwargs(cuda)
    assert deepfloyd.stage_load_kwargs(torch.device("cpu")) == dict(
        tokenizer=None, text_encoder=None, safety_checker=None, watermarker=None, feature_extractor=None,
        requires_safety_checker=False)


@pytest.mark.parametrize("bitsandbytes", [True, False], ids=["t5-8bit", "t5-fp16"])
def test_every_step_fits_a_free_t4(on_a_gpu, bitsandbytes):
    on_a_gpu(bitsandbytes)
    cuda = torch.device("cuda")
    plan = memory_plan.free_t4_plan(deepfloyd.text_encoder_load_kwargs(cuda), deepfloyd.stage_load_kwargs(cuda))
    print("\n".join(map(str, plan)))
    for step in plan:
        assert step.fits(FREE_T4, MARGIN), f"{step} does not fit {FREE_T4} with {MARGIN:.0%} to spare"
    assert plan[0].gpu < (9 if bitsandbytes else 12.5) * GiB   # 8-bit saves ~3.3 GiB


def test_cpu_offload_would_not_fit(on_a_gpu):
    # Why the stages stay on the GPU: offloaded UNets live in RAM, and two of them do not fit
    on_a_gpu(True)
    step = memory_plan.offload_plan(deepfloyd.stage_load_kwargs(torch.device("cuda")))
    assert step.ram > FREE_T4.ram, step


def test_loading_through_ram_would_not_fit_t5():
    # Why T5 gets a device_map: in fp16 through RAM it alone is ~11 GiB of the 12.7
    fp16 = {"dtype": torch.float16}
    step = memory_plan.free_t4_plan(fp16, fp16)[0]
    assert not step.fits(FREE_T4, MARGIN), step
