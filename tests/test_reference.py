"""The committed reference model of notebook 16 and the one command that makes it."""
import pytest
import torch

from course_utils.common.checkpoint import load_weights
from course_utils.common.data import make_fake_mnist
from course_utils.part_b.reference import (TIME_REFERENCE_PATH, TIME_REFERENCE_RECIPE, describe_reference,
                                           load_reference, reference_info, train_to_file)
from course_utils.part_b.unet import TimeConditionalUNet


def test_committed_reference_is_the_recipe_it_claims():
    model = load_reference()
    info = reference_info()
    assert type(model) is TimeConditionalUNet
    assert model.config["num_hiddens"] == TIME_REFERENCE_RECIPE["flow_D"] == info["D"]
    for key, value in TIME_REFERENCE_RECIPE.items():
        assert info[key] == value, key
    assert f"{info['flow_epochs']} epochs" in describe_reference(info)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(model(x, torch.rand(3))).all()


def test_train_to_file_saves_the_runs_final_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    root = make_fake_mnist(tmp_path / "data", num_train=32, num_test=8)
    recipe = dict(flow_D=4, flow_batch=16, flow_lr=1e-3, flow_epochs=2, ema_decay=0.9)
    out = train_to_file(recipe, tmp_path / "ref.pt", class_conditioned=False, data_root=root,
                        device="cpu", ckpt_dir=tmp_path / "ckpt", keep_epochs=(2,))
    saved = load_reference(out)
    # the last kept snapshot holds the run's (averaged) final weights: the file must hold the same
    snapshot = TimeConditionalUNet(num_hiddens=4)
    load_weights(next((tmp_path / "ckpt").rglob("epoch_2.pt")), snapshot)
    for (k, a), b in zip(saved.state_dict().items(), snapshot.state_dict().values()):
        assert torch.equal(a, b), k
    info = reference_info(out)
    assert info["num_train"] == 32 and info["ema_decay"] == 0.9 and info["D"] == 4


def test_missing_reference_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m course_utils.part_b.reference"):
        load_reference(tmp_path / "nope.pt")
