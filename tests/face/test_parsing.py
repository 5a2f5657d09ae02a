"""facezoo.face.parsing: BiSeNet in face-parsing.PyTorch's key layout, weight loading, label conversion; label maps
drawn from landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from facezoo.face.labels import CELEBAMASK_HQ, FACE_PARSING_PYTORCH
from facezoo.face.parsing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BiSeNet,
    FaceParser,
    load_bisenet,
    parsing_from_landmarks,
)
from facezoo.nets.weights import WeightsNotFoundError

#: Keys and shapes of the released 79999_iter.pth, read from zllrunning/face-parsing.PyTorch model.py /
#: resnet.py (ResNet-18 trunk under cp.resnet, no spatial path, three heads).
RELEASED_KEYS = {
    "cp.resnet.conv1.weight": (64, 3, 7, 7),
    "cp.resnet.bn1.running_var": (64,),
    "cp.resnet.layer1.0.conv1.weight": (64, 64, 3, 3),
    "cp.resnet.layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "cp.resnet.layer2.0.downsample.1.weight": (128,),
    "cp.resnet.layer4.1.bn2.bias": (512,),
    "cp.arm16.conv.conv.weight": (128, 256, 3, 3),
    "cp.arm16.conv.bn.weight": (128,),
    "cp.arm16.conv_atten.weight": (128, 128, 1, 1),
    "cp.arm16.bn_atten.running_mean": (128,),
    "cp.arm32.conv.conv.weight": (128, 512, 3, 3),
    "cp.conv_head32.conv.weight": (128, 128, 3, 3),
    "cp.conv_head16.bn.bias": (128,),
    "cp.conv_avg.conv.weight": (128, 512, 1, 1),
    "ffm.convblk.conv.weight": (256, 256, 1, 1),
    "ffm.conv1.weight": (64, 256, 1, 1),
    "ffm.conv2.weight": (256, 64, 1, 1),
    "conv_out.conv.conv.weight": (256, 256, 3, 3),
    "conv_out.conv_out.weight": (19, 256, 1, 1),
    "conv_out16.conv.conv.weight": (64, 128, 3, 3),
    "conv_out32.conv_out.weight": (19, 64, 1, 1),
}


@pytest.fixture(scope="module")
def net() -> BiSeNet:
    torch.manual_seed(0)
    net = BiSeNet()
    with torch.no_grad():   # non-trivial BatchNorm statistics, so a lost buffer would change the output
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_layout_matches_the_released_file(net):
    state = net.state_dict()
    for key, shape in RELEASED_KEYS.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith(("sp.", "cp.resnet.fc")) for k in state)
    assert sum(p.numel() for p in net.parameters()) == 13_300_416   # the official layer list (about 53 MB float32)
    assert sum(k.endswith(".weight") and v.ndim == 4 for k, v in state.items()) == 36   # 20 trunk + 16 head convs


def test_forward_shapes_aux_heads_and_checks(net):
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        main, aux16, aux32 = net(x, return_aux=True)
        assert torch.equal(net(x), main)
    assert main.shape == aux16.shape == aux32.shape == (2, 19, 64, 96)
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.zeros(1, 3, 50, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(1, 1, 64, 64))


def test_released_format_round_trip_by_name_and_by_path(net, tmp_path, monkeypatch):
    torch.save(net.state_dict(), tmp_path / "79999_iter.pth")        # the release is a plain state dict
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = net(x)
        for loaded in (load_bisenet(), load_bisenet(tmp_path / "79999_iter.pth")):
            assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
            assert torch.allclose(loaded(x), expected, atol=1e-6)
            loaded.train()                                            # frozen: stays in eval mode
            assert not loaded.training


def test_files_without_num_batches_tracked_load_and_wrong_keys_do_not(net, tmp_path):
    old = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    assert torch.equal(load_bisenet(tmp_path / "old.pth").state_dict()["conv_out.conv_out.weight"],
                       old["conv_out.conv_out.weight"])
    renamed = {k.replace("cp.resnet.", "cp.backbone."): v for k, v in net.state_dict().items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(RuntimeError, match="cp.resnet.conv1.weight"):
        load_bisenet(tmp_path / "renamed.pth")


def test_missing_weights_name_the_file_and_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "empty"))
    with pytest.raises(WeightsNotFoundError) as info:
        load_bisenet()
    text = str(info.value)
    assert "79999_iter.pth" in text and "face-parsing.PyTorch" in text and "parser_weights=" in text
    assert "\n" not in text
    with pytest.raises(WeightsNotFoundError, match="nothere.pth"):
        load_bisenet(tmp_path / "nothere.pth")


class FixedLogits(nn.Module):
    """Stand-in network: the face-parsing.PyTorch label of each pixel comes from a fixed map."""

    def __init__(self, labels: torch.Tensor):
        super().__init__()
        self.register_buffer("labels", labels)
        self.seen = None

    def forward(self, x):
        self.seen = x
        return nn.functional.one_hot(self.labels, 19).permute(2, 0, 1)[None].float()

    def parameters(self, recurse=True):
        yield self.labels


def test_face_parser_normalises_converts_labels_and_resizes():
    fp_labels = torch.arange(19).repeat_interleave(4)[:64].view(1, 64).expand(64, 64).clone()   # columns
    stub = FixedLogits(fp_labels)
    parser = FaceParser(stub, input_size=64)
    image = np.full((40, 30, 3), 255, np.uint8)
    out = parser.parse(image, out_size=(16, 16))
    # the network saw ImageNet-normalised [0, 1] input at 64x64
    assert stub.seen.shape == (1, 3, 64, 64)
    expected_input = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(stub.seen[0, :, 5, 5], expected_input, atol=1e-5)
    # nearest 64 -> 16: column j of the output is column 4j of the map, i.e. face-parsing label j
    assert out.shape == (16, 16) and out.dtype == torch.int64
    for j in range(16):
        name = FACE_PARSING_PYTORCH.names[j]
        assert (out[:, j] == CELEBAMASK_HQ.index(name)).all(), name
    assert parser.parse(image).shape == (40, 30)                          # default: the input's size
    with pytest.raises(ValueError, match="uint8"):
        parser.parse(image.astype(np.float32))
    with pytest.raises(ValueError, match="multiple of 32"):
        FaceParser(stub, input_size=100)


# ------------------------------------------------------------------------------------- from landmarks
def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum().clamp(min=1))


def test_landmark_parsing_agrees_with_the_synthetic_renderers_masks():
    """Synthetic faces come with their true CelebAMask-HQ parsing and all 68 landmarks: the polygons must land on
    the rendered lips, eyes (each on its own image side) and nose. Brows and the forehead are not compared: the
    renderer's brow points follow the brow's middle and its skin covers the forehead."""
    from facezoo.data.synthetic import SyntheticFaces

    faces = SyntheticFaces("test", size=128, length=6, yaw_range=(-20.0, 20.0), makeup=0.0)
    ious: dict[str, list[float]] = {}
    for sample in faces:
        drawn, truth = parsing_from_landmarks(sample["landmarks"], 128), sample["mask"]
        for name, parts in {"lips": ("u_lip", "l_lip"), "l_eye": ("l_eye",), "r_eye": ("r_eye",),
                            "nose": ("nose",)}.items():
            ids = torch.tensor([CELEBAMASK_HQ.index(p) for p in parts])
            ious.setdefault(name, []).append(_iou(torch.isin(drawn, ids), torch.isin(truth, ids)))
    means = {name: float(np.mean(v)) for name, v in ious.items()}
    assert min(means.values()) > 0.5, means                # measured: nose 0.59, eyes 0.72-0.73, lips 0.81


def test_landmark_parsing_shapes_batches_and_checks():
    from facezoo.data.synthetic import SyntheticFaces

    points = torch.stack([SyntheticFaces("test", size=64, length=2)[i]["landmarks"] for i in range(2)])
    batch = parsing_from_landmarks(points, (64, 80))
    assert batch.shape == (2, 64, 80) and batch.dtype == torch.int64
    assert torch.equal(batch[1], parsing_from_landmarks(points[1].numpy(), (64, 80)))
    assert not torch.equal(batch[0], batch[1])
    assert set(batch.unique().tolist()) <= set(range(len(CELEBAMASK_HQ)))
    moved = parsing_from_landmarks(points[0] + torch.tensor([5.0, 0.0]), (64, 80))    # x is the column
    assert torch.equal(moved[:, 5:], batch[0][:, :-5])
    assert parsing_from_landmarks(torch.full((68, 2), -10.0), 16).eq(0).all()          # off the image: nothing
    with pytest.raises(ValueError, match=r"\(68, 2\) or \(B, 68, 2\), got \(5, 2\)"):
        parsing_from_landmarks(np.zeros((5, 2)), 64)
    with pytest.raises(ValueError, match="finite"):
        parsing_from_landmarks(torch.full((68, 2), float("nan")), 64)
    with pytest.raises(ValueError, match="size must be positive"):
        parsing_from_landmarks(points[0], 0)
