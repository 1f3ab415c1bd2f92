"""What a Colab GPU would do, checked on a CPU by simulating the device's capabilities."""
import pytest
import torch

from course_utils.part_b.train import resolve_precision


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"),
                                                  ((8, 0), "bf16"), ((8, 9), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_uses_native_bf16_only(monkeypatch, capability, expected):
    # torch 2.14 says bf16 is "supported" on a T4 because it can be emulated; the choice must
    # follow the compute capability instead.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert resolve_precision("auto", torch.device("cuda")) == expected
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
