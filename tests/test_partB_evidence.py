"""Helpers behind 17 and 18's evidence: quality over seeds, a held-out flow loss, and the live
(non-averaged) weights of an EMA run, which are the weights of the same run without EMA."""
import pytest
import torch

from course_utils.common.metrics import Quality, over_seeds, spread
from course_utils.common.profiles import get_profile
from course_utils.part_b.evaluation import heldout_flow_loss
from course_utils.part_b.recipes import live_weights, train_flow
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet


def test_over_seeds_and_spread():
    qs = over_seeds(lambda s: Quality(10, fd=2.0 * (s + 1), floor=1.0, accuracy=0.5 + 0.1 * s), [0, 1, 2])
    assert [q.ratio for q in qs] == [2.0, 4.0, 6.0]
    text = spread(qs)
    assert "4.0× [2.0–6.0]" in text and "60.0% [50.0–70.0]" in text and "3 seeds, n = 10" in text


@pytest.mark.parametrize("net", [TimeConditionalUNet, ClassConditionalUNet])
def test_heldout_flow_loss_is_the_same_for_the_same_seed(net):
    torch.manual_seed(0)
    model = net(num_hiddens=4)
    x = torch.rand(30, 1, 28, 28)
    y = torch.arange(30) % 10 if net is ClassConditionalUNet else None
    a, b = heldout_flow_loss(model, x, y, seed=3, batch_size=7), heldout_flow_loss(model, x, y, seed=3)
    assert a == pytest.approx(b, rel=1e-5)
    assert heldout_flow_loss(model, x, y, seed=4) != pytest.approx(a, rel=1e-6)


def test_live_weights_of_an_ema_run_are_the_run_without_ema(tmp_path, monkeypatch, fake_mnist):
    monkeypatch.setenv("COURSE_CKPT_DIR", str(tmp_path))
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    X, Y = fake_mnist
    profile = get_profile("smoke", flow_epochs=2, keep_epochs=(1, 2))
    plain, _ = train_flow(X, Y, profile, "cpu", class_conditioned=True, lr_schedule=False)
    ema, history = train_flow(X, Y, profile, "cpu", class_conditioned=True, lr_schedule=False, ema_decay=0.9)
    live = live_weights(ema, history)
    for k, v in plain.state_dict().items():
        assert torch.equal(live.state_dict()[k], v), k
    assert not all(torch.equal(ema.state_dict()[k], v) for k, v in plain.state_dict().items())
    # after an earlier kept epoch too
    live1 = live_weights(ema, history, epoch=1)
    assert not all(torch.equal(live1.state_dict()[k], v) for k, v in live.state_dict().items())
