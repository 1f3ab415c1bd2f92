"""A student's UNet (no ``config`` attribute) and the course's share checkpoints when their weights
have the same names and shapes: notebook 18 reuses the run notebook 17 trained with the student's
class; a network of another size is still refused with CheckpointMismatch."""
import pytest
import torch
from torch import nn

from course_utils.common.checkpoint import CheckpointMismatch, load_weights, save_weights
from course_utils.part_b.unet import ClassConditionalUNet
from course_utils.solutions.part_b_networks import ClassConditionalUNet as StudentUNet


def test_a_students_class_and_the_courses_load_each_others_weights(tmp_path):
    torch.manual_seed(0)
    student, course = StudentUNet(num_hiddens=4), ClassConditionalUNet(num_hiddens=4)
    assert not hasattr(student, "config")
    save_weights(tmp_path / "s.pt", student)
    load_weights(tmp_path / "s.pt", course)
    for k, v in student.state_dict().items():
        assert torch.equal(course.state_dict()[k], v)
    other = ClassConditionalUNet(num_hiddens=4)
    save_weights(tmp_path / "c.pt", other)
    student = StudentUNet(num_hiddens=4)
    load_weights(tmp_path / "c.pt", student)
    assert student.state_dict().keys() == other.state_dict().keys()
    for k, v in other.state_dict().items():
        assert torch.equal(student.state_dict()[k], v)


def test_another_size_or_another_class_is_still_refused(tmp_path):
    save_weights(tmp_path / "s.pt", StudentUNet(num_hiddens=4))
    with pytest.raises(CheckpointMismatch, match="was saved for"):
        load_weights(tmp_path / "s.pt", ClassConditionalUNet(num_hiddens=8))
    save_weights(tmp_path / "l.pt", nn.Linear(2, 2))
    with pytest.raises(CheckpointMismatch, match="was saved for"):
        load_weights(tmp_path / "l.pt", ClassConditionalUNet(num_hiddens=4))
