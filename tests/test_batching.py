"""Chunked CPU forward passes change the speed, not the numbers (beyond float32 rounding)."""
import torch

from course_utils.common.batching import CPU_CHUNK, Chunked, chunked_forward
from course_utils.part_b.sampling import sample_class_conditioned
from course_utils.part_b.unet import ClassConditionalUNet


def test_chunked_forward_equals_one_pass_and_splits_only_per_image_arguments():
    torch.manual_seed(0)
    net = ClassConditionalUNet(num_hiddens=4).eval()
    n = 2 * CPU_CHUNK + 7
    x, c = torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,))
    t = torch.rand(n)
    calls = []

    def counting(x, *args):
        calls.append(len(x))
        return net(x, *args)

    with torch.inference_mode():
        whole = net(x, t, c)
        assert torch.allclose(chunked_forward(counting, x, t, c), whole, atol=1e-6)   # per-image t and c split with x
        assert calls == [CPU_CHUNK, CPU_CHUNK, 7]
        assert torch.allclose(chunked_forward(net, x, 0.5, c), net(x, 0.5, c), atol=1e-6)   # a scalar t goes to every chunk


def test_chunked_keeps_the_network_s_attributes_and_samples_match_unchunked():
    torch.manual_seed(0)
    net = ClassConditionalUNet(num_hiddens=4).eval()
    wrapped = Chunked(net)
    assert wrapped.num_classes == 10 and wrapped.in_channels == 1
    labels = torch.arange(130) % 10   # CFG doubles the batch to 260: three chunks
    got = sample_class_conditioned(net, labels, 3, 5.0, torch.Generator().manual_seed(1))
    # the same Euler steps with one pass of the whole batch
    c = torch.nn.functional.one_hot(labels, 10).float()
    x = torch.randn((130, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        for i in range(3):
            u_c, u_u = net(torch.cat([x, x]), i / 3, torch.cat([c, torch.zeros_like(c)])).chunk(2)
            x = x + (u_u + 5.0 * (u_c - u_u)) / 3
    assert torch.allclose(got, x, atol=1e-6)
