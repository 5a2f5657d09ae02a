"""Tests of facezoo.nets: the weight resolver and the pretrained networks.

No test touches the network: FACEZOO_OFFLINE=1, and every checkpoint is a randomly initialised network
saved in the released file format into tmp_path.
"""

from __future__ import annotations

import hashlib
import io
import logging
import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models import inception as tv_inception

from facezoo.nets import lpips_net, weights
from facezoo.nets.inception import FIDInceptionA, FIDInceptionV3
from facezoo.nets.irse import IRSE50, BottleneckIRSE, SEModule, get_blocks
from facezoo.nets.lightcnn import LightCNN29v2, MaxFeatureMap, max_avg_pool, rgb_to_lightcnn
from facezoo.nets.lpips_net import lpips_network
from facezoo.nets.vgg import VGGFeatures, vgg_layer_names
from facezoo.nets.weights import (
    WEIGHTS,
    UntrustedFileError,
    WeightsNotFoundError,
    WeightSpec,
    load_state_dict_file,
    resolve_weights,
    trusting_pickles,
)


@pytest.fixture
def env(monkeypatch, tmp_path):
    """An empty facezoo cache and torch hub dir under tmp_path, downloads disabled."""
    cache, hub = tmp_path / "cache", tmp_path / "torch"
    monkeypatch.setenv("FACEZOO_CACHE", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(hub))
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    yield {"cache": cache, "hub_checkpoints": hub / "hub" / "checkpoints", "tmp": tmp_path}
    _remove_checkpoints(tmp_path)


def _remove_checkpoints(directory):
    """Delete the (up to 175 MB) checkpoints a test wrote, so pytest's retained temp dirs stay small."""
    for path in directory.rglob("*.pth*"):
        path.unlink()


@pytest.fixture
def scratch(tmp_path):
    """tmp_path whose checkpoint files are deleted after the test."""
    yield tmp_path
    _remove_checkpoints(tmp_path)


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------------------- resolver


def test_registry_has_the_released_files():
    assert WEIGHTS["vgg16"].url == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert WEIGHTS["vgg19"].filename == "vgg19-dcbb9e9d.pth"
    assert WEIGHTS["alexnet"].filename == "alexnet-owt-7be5be79.pth"
    assert WEIGHTS["fid_inception"].url.endswith("fid_weights/pt_inception-2015-12-05-6726825d.pth")
    assert WEIGHTS["lightcnn29_v2"].filename == "LightCNN_29Layers_V2_checkpoint.pth.tar"
    assert WEIGHTS["lightcnn29_v2"].url is None and WEIGHTS["ir_se50"].url is None
    # torchvision file names carry the sha256 prefix that torch hub checks
    for name in ("vgg16", "vgg19", "alexnet", "squeezenet1_1"):
        assert WEIGHTS[name].filename.split("-")[-1] == WEIGHTS[name].sha256_prefix + ".pth"


def test_resolve_order_explicit_then_cache_then_torch_hub(env):
    name = WEIGHTS["vgg16"].filename
    in_hub = _touch(env["hub_checkpoints"] / name)
    assert resolve_weights("vgg16") == in_hub  # only torch hub has it
    in_cache = _touch(env["cache"] / name)
    assert resolve_weights("vgg16") == in_cache  # the facezoo cache comes first
    explicit = _touch(env["tmp"] / "elsewhere" / "my_vgg.pth")
    assert resolve_weights("vgg16", path=explicit) == explicit  # an explicit path wins
    assert resolve_weights("vgg16", path=str(explicit)) == explicit


def test_torch_hub_dir_is_only_searched_for_torchvision_files(env):
    _touch(env["hub_checkpoints"] / WEIGHTS["ir_se50"].filename)
    with pytest.raises(WeightsNotFoundError):
        resolve_weights("ir_se50")


def test_missing_explicit_path_is_an_error_even_if_cached(env):
    _touch(env["cache"] / WEIGHTS["ir_se50"].filename)
    missing = env["tmp"] / "nope.pth"
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights("ir_se50", path=missing)
    message = str(info.value)
    assert "\n" not in message and str(missing) in message


@pytest.mark.parametrize("name", ["lightcnn29_v2", "vgg16", "fid_inception"])
def test_not_found_message_is_one_line_naming_file_dir_and_argument(env, name):
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights(name, path_arg="model.identity.weights")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "\n" not in message
    assert WEIGHTS[name].filename in message
    assert str(env["cache"]) in message
    assert "model.identity.weights=PATH" in message
    assert ("FACEZOO_OFFLINE" in message) == (WEIGHTS[name].url is not None)
    if WEIGHTS[name].url is None:
        assert "no direct URL" in message


def test_unknown_name_lists_known_names(env):
    with pytest.raises(ValueError, match="vgg16"):
        resolve_weights("resnet9000")


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _toy_spec(monkeypatch, data, prefix):
    spec = WeightSpec(
        "toy", "toy-weights.pth", "http://weights.invalid/toy-weights.pth", prefix, "toy", "nowhere"
    )
    monkeypatch.setitem(WEIGHTS, "toy", spec)
    return spec


def test_download_writes_atomically_into_cache_and_is_reused(env, monkeypatch):
    monkeypatch.delenv("FACEZOO_OFFLINE")
    data = b"tensor bytes" * 1000
    _toy_spec(monkeypatch, data, hashlib.sha256(data).hexdigest()[:8])
    calls = []

    def fake_urlopen(url, timeout):
        calls.append((url, timeout))
        return _FakeResponse(data)

    monkeypatch.setattr(weights.urllib.request, "urlopen", fake_urlopen)
    path = resolve_weights("toy")
    assert path == env["cache"] / "toy-weights.pth" and path.read_bytes() == data
    assert calls == [("http://weights.invalid/toy-weights.pth", weights.DEFAULT_TIMEOUT_S)]
    assert sorted(p.name for p in env["cache"].iterdir()) == ["toy-weights.pth"]  # no temp file left
    assert resolve_weights("toy") == path and len(calls) == 1  # now a cache hit


def test_download_hash_mismatch_leaves_nothing(env, monkeypatch):
    monkeypatch.delenv("FACEZOO_OFFLINE")
    _toy_spec(monkeypatch, b"abc", "00000000")
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(b"abc"))
    with pytest.raises(WeightsNotFoundError, match="sha256"):
        resolve_weights("toy")
    assert list(env["cache"].iterdir()) == []


def test_download_failure_and_download_false(env, monkeypatch):
    monkeypatch.delenv("FACEZOO_OFFLINE")
    monkeypatch.setenv("FACEZOO_DOWNLOAD_TIMEOUT", "0.5")
    _toy_spec(monkeypatch, b"", None)
    seen = []

    def unreachable(url, timeout):
        seen.append(timeout)
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(weights.urllib.request, "urlopen", unreachable)
    with pytest.raises(WeightsNotFoundError) as info:
        resolve_weights("toy")
    assert seen == [0.5]
    assert "URLError" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="download=False"):
        resolve_weights("toy", download=False)
    assert seen == [0.5]  # download=False did not try


class _Opaque:
    """A Python object that ``torch.load(weights_only=True)`` refuses."""


def test_load_state_dict_file_unwraps_and_strips_module(tmp_path):
    tensor = torch.arange(3.0)
    torch.save(
        {"epoch": 3, "arch": "LightCNN-29v2", "state_dict": {"module.fc.weight": tensor}}, tmp_path / "a.tar"
    )
    torch.save({"body.0.weight": tensor}, tmp_path / "b.pth")
    torch.save({"state_dict": {"x": tensor}, "extra": _Opaque()}, tmp_path / "c.pth")
    torch.save({"w": tensor, "n": 3}, tmp_path / "d.pth")
    a = load_state_dict_file(tmp_path / "a.tar")
    assert list(a) == ["fc.weight"] and torch.equal(a["fc.weight"], tensor)
    assert list(load_state_dict_file(tmp_path / "b.pth")) == ["body.0.weight"]
    # a pickled object: refused by default with one line naming it, read when trusted (explicitly or in the block)
    with pytest.raises(UntrustedFileError, match=r"c\.pth: holds a pickled .*_Opaque.*trust_checkpoint=true"):
        load_state_dict_file(tmp_path / "c.pth")
    assert list(load_state_dict_file(tmp_path / "c.pth", allow_pickle=True)) == ["x"]
    with trusting_pickles():
        assert list(load_state_dict_file(tmp_path / "c.pth")) == ["x"]
    with trusting_pickles(), pytest.raises(UntrustedFileError):
        load_state_dict_file(tmp_path / "c.pth", allow_pickle=False)      # an explicit False wins
    with pytest.raises(TypeError, match="'n'"):
        load_state_dict_file(tmp_path / "d.pth")


def test_freezable_stays_in_eval():
    net = LightCNN29v2(num_classes=4).freeze()
    parent = nn.ModuleDict({"id": net, "head": nn.Linear(2, 2)})
    parent.train()
    assert parent["head"].training and not net.training
    assert not any(p.requires_grad for p in net.parameters())


# ---------------------------------------------------------------------------------------------- VGG


def test_vgg_layer_names_match_torchvision_indices():
    names16, names19 = vgg_layer_names("vgg16"), vgg_layer_names("vgg19")
    assert len(names16) == len(torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])) == 31
    assert len(names19) == 37
    assert [names16.index(n) for n in ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "pool5")] == [
        3,
        8,
        15,
        22,
        30,
    ]
    assert [names19.index(n) for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")] == [
        1,
        6,
        11,
        20,
        29,
    ]
    with pytest.raises(ValueError, match="relu9_9"):
        VGGFeatures("vgg16", layers=("relu9_9",))


@pytest.fixture(scope="module")
def tv_vgg16():
    torch.manual_seed(0)
    return torchvision.models.vgg16(weights=None).eval()


@pytest.fixture(scope="module")
def vgg16_file(tv_vgg16, tmp_path_factory):
    """torchvision's VGG16 state dict (classifier included) under its released file name, written once."""
    path = tmp_path_factory.mktemp("vgg_cache") / WEIGHTS["vgg16"].filename
    torch.save(tv_vgg16.state_dict(), path)
    yield path
    path.unlink()  # 528 MB: do not leave it in pytest's retained temp dirs


def test_vgg_loads_torchvision_checkpoint_and_matches_reference(env, monkeypatch, tv_vgg16, vgg16_file):
    monkeypatch.setenv("FACEZOO_CACHE", str(vgg16_file.parent))
    path = vgg16_file
    net = VGGFeatures("vgg16", layers=("relu2_2", "conv1_2", "relu1_2"), weights="imagenet")
    assert len(net.features) == 9  # truncated after relu2_2
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    normed = ((x + 1) / 2 - mean) / std
    with torch.no_grad():
        relu2_2, conv1_2, relu1_2 = net(x)
        ref = tv_vgg16.features
        assert torch.allclose(conv1_2, ref[:3](normed.clone()), atol=1e-5)
        assert conv1_2.min() < 0  # the tapped conv output was not overwritten by an in-place ReLU
        assert torch.allclose(relu1_2, ref[:4](normed.clone()), atol=1e-5)
        assert torch.allclose(relu2_2, ref[:9](normed.clone()), atol=1e-5)
        raw = VGGFeatures("vgg16", layers=("relu1_2",), weights=path, normalize_input=False)(x)[0]
        assert torch.allclose(raw, ref[:4](x.clone()), atol=1e-5)


def test_vgg_is_frozen_but_passes_gradients_to_the_input(vgg16_file):
    net = VGGFeatures("vgg16", layers=("relu1_2",), weights=vgg16_file)
    net.train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    x = (torch.rand(1, 3, 8, 8) * 2 - 1).requires_grad_()
    net(x)[0].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vgg_strict_on_kept_layers(scratch, tv_vgg16):
    tmp_path = scratch
    state = {
        k: v
        for k, v in tv_vgg16.state_dict().items()
        if k.startswith("features.") and k != "features.2.weight"
    }
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(RuntimeError, match="features.2.weight"):
        VGGFeatures("vgg16", layers=("relu1_2",), weights=tmp_path / "broken.pth")
    # the same file is fine for a layer set that does not need the missing tensor
    VGGFeatures("vgg16", layers=("relu1_1",), weights=tmp_path / "broken.pth")


def test_vgg_rejects_bad_input():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        VGGFeatures("vgg16", layers=("relu1_1",))(torch.zeros(1, 1, 8, 8))


# ----------------------------------------------------------------------------------------- LightCNN


def test_mfm_and_pool_by_hand():
    mfm = MaxFeatureMap(2, 2, linear=True)
    with torch.no_grad():
        mfm.filter.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [0, 0], [2, 0]]))
        mfm.filter.bias.zero_()
    # outputs before the max: [x0, x1, 0, 2*x0] -> max(x0, 0), max(x1, 2*x0)
    assert torch.equal(mfm(torch.tensor([[-1.0, 3.0]])), torch.tensor([[0.0, 3.0]]))
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert max_avg_pool(x).item() == 4.0 + 2.5


def test_lightcnn_key_names_match_the_release():
    state = LightCNN29v2().state_dict()
    expected_shapes = {
        "conv1.filter.weight": (96, 1, 5, 5),
        "block1.0.conv1.filter.weight": (96, 48, 3, 3),
        "block1.0.conv2.filter.bias": (96,),
        "group1.conv_a.filter.weight": (96, 48, 1, 1),
        "group1.conv.filter.weight": (192, 48, 3, 3),
        "block2.1.conv2.filter.weight": (192, 96, 3, 3),
        "group3.conv.filter.weight": (256, 192, 3, 3),
        "block4.3.conv1.filter.weight": (256, 128, 3, 3),
        "group4.conv.filter.bias": (256,),
        "fc.weight": (256, 8 * 8 * 128),
        "fc.bias": (256,),
        "fc2.weight": (80013, 256),
    }
    for key, shape in expected_shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert "fc2.bias" not in state
    # conv1 + 10 residual blocks x 2 MFMs + 4 groups x 2 MFMs, weight and bias each; fc (2) and fc2 (1)
    assert len(state) == 2 + 10 * 4 + 4 * 4 + 2 + 1


def test_lightcnn_release_checkpoint_round_trip(env):
    torch.manual_seed(1)
    saved = LightCNN29v2(num_classes=100).eval()
    ckpt = {
        "epoch": 40,
        "arch": "LightCNN-29v2",
        "state_dict": {"module." + k: v for k, v in saved.state_dict().items()},
    }
    path = env["cache"] / WEIGHTS["lightcnn29_v2"].filename
    path.parent.mkdir(parents=True)
    torch.save(ckpt, path)
    loaded = LightCNN29v2.from_pretrained(num_classes=100)  # resolved from the cache
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    x = torch.rand(1, 1, 128, 128)
    with torch.no_grad():
        logits, fc = loaded(x)
        ref_logits, ref_fc = saved(x)
        feature, pool4 = loaded.features(x)
    assert logits.shape == (1, 100) and fc.shape == (1, 256) and pool4.shape == (1, 128, 8, 8)
    assert torch.allclose(logits, ref_logits, atol=1e-5) and torch.allclose(fc, ref_fc, atol=1e-5)
    assert torch.equal(feature, fc)
    assert torch.allclose(loaded.fc(pool4.flatten(1)), fc, atol=1e-5)
    with pytest.raises(ValueError, match="128, 128"):
        loaded(torch.rand(1, 1, 64, 64))


def test_rgb_to_lightcnn_gray_levels():
    rgb = torch.empty(1, 3, 4, 4)
    rgb[:, 0], rgb[:, 1], rgb[:, 2] = 1.0, -1.0, 0.0  # R=1, G=0, B=0.5 in [0, 1]
    gray = rgb_to_lightcnn(rgb, size=4)
    assert gray.shape == (1, 1, 4, 4)
    assert torch.allclose(gray, torch.full_like(gray, 0.299 + 0.114 * 0.5))
    assert rgb_to_lightcnn(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 128, 128)


# ------------------------------------------------------------------------------------------ IR-SE50


def test_ir_blocks_and_key_names():
    assert [len(stage) for stage in get_blocks(50)] == [3, 4, 14, 3]
    assert [len(stage) for stage in get_blocks(100)] == [3, 13, 30, 3]
    state = IRSE50().state_dict()
    expected_shapes = {
        "input_layer.0.weight": (64, 3, 3, 3),
        "input_layer.1.running_var": (64,),
        "input_layer.2.weight": (64,),
        "body.0.res_layer.0.weight": (64,),
        "body.0.res_layer.1.weight": (64, 64, 3, 3),
        "body.0.res_layer.2.weight": (64,),
        "body.0.res_layer.5.fc1.weight": (4, 64, 1, 1),
        "body.0.res_layer.5.fc2.weight": (64, 4, 1, 1),
        "body.3.shortcut_layer.0.weight": (128, 64, 1, 1),
        "body.3.shortcut_layer.1.running_mean": (128,),
        "body.23.res_layer.3.weight": (512, 512, 3, 3),
        "output_layer.0.weight": (512,),
        "output_layer.3.weight": (512, 512 * 7 * 7),
        "output_layer.4.running_mean": (512,),
    }
    for key, shape in expected_shapes.items():
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith("body.0.shortcut_layer") for k in state)  # identity (max-pool) shortcut
    assert len(IRSE50().body) == 24


def test_se_module_and_ir_unit_by_hand():
    se = SEModule(32, 16)
    nn.init.zeros_(se.fc2.weight)  # gate = sigmoid(0) = 1/2
    x = torch.randn(2, 32, 3, 3)
    assert torch.allclose(se(x), x / 2)
    unit = BottleneckIRSE(32, 32, 2).eval()
    nn.init.zeros_(unit.res_layer[4].weight)  # residual branch -> 0: output = strided identity shortcut
    assert torch.allclose(unit(x), x[:, :, ::2, ::2])


def test_irse50_checkpoint_round_trip_and_taps(env):
    tmp_path = env["tmp"]
    torch.manual_seed(2)
    saved = IRSE50().eval()
    for module in saved.modules():  # non-trivial BN statistics so that a missed buffer shows
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    # model_ir_se50.pth predates num_batches_tracked: a plain state dict without it must load strictly
    state = {k: v for k, v in saved.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "model_ir_se50.pth")
    loaded = IRSE50.from_pretrained(tmp_path / "model_ir_se50.pth")
    x = torch.rand(1, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        emb = loaded(x)
        assert emb.shape == (1, 512)
        assert torch.allclose(emb.norm(dim=1), torch.ones(1), atol=1e-5)
        assert torch.allclose(emb, saved(x), atol=1e-5)
        small = torch.rand(1, 3, 64, 64) * 2 - 1
        c1, c2, c3 = loaded.body_features(small)
        assert (c1.shape, c2.shape, c3.shape) == ((1, 128, 16, 16), (1, 256, 8, 8), (1, 512, 4, 4))
        assert torch.allclose(c3, loaded.body(loaded.input_layer(small)), atol=1e-5)
    with pytest.raises(ValueError, match="112, 112"):
        loaded(torch.rand(1, 3, 64, 64))
    with pytest.raises(WeightsNotFoundError, match="model_ir_se50.pth"):
        IRSE50.from_pretrained()  # offline, empty cache


# ---------------------------------------------------------------------------------------- Inception


def test_fid_inception_keys_equal_torchvision_inception_1008():
    ref = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    )
    ours = FIDInceptionV3(init_weights=False)
    ref_state, our_state = ref.state_dict(), ours.state_dict()
    assert list(our_state) == list(ref_state)
    assert all(our_state[k].shape == ref_state[k].shape for k in ref_state)
    assert our_state["fc.weight"].shape == (1008, 2048)
    assert ours.Mixed_7b.pool == "avg" and ours.Mixed_7c.pool == "max" and ours.num_features == 2048


def test_fid_inception_a_pool_excludes_padding():
    torch.manual_seed(3)
    ref = tv_inception.InceptionA(16, pool_features=8).eval()
    ours = FIDInceptionA(16, pool_features=8).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.rand(1, 16, 6, 6)
    with torch.no_grad():
        a, b = ours(x), ref(x)
    assert torch.allclose(a[:, :224], b[:, :224])  # 1x1, 5x5 and 3x3dbl branches are unchanged
    # the pool branch differs only where the 3x3 window touches the padding
    assert torch.allclose(a[:, 224:, 1:-1, 1:-1], b[:, 224:, 1:-1, 1:-1], atol=1e-6)
    assert not torch.allclose(a[:, 224:, 0, 0], b[:, 224:, 0, 0])


def test_fid_inception_checkpoint_round_trip(scratch):
    tmp_path = scratch
    torch.manual_seed(4)
    saved = FIDInceptionV3().eval()
    torch.save(saved.state_dict(), tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    loaded = FIDInceptionV3.from_pretrained(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        feats = loaded(x)
        assert feats.shape == (1, 2048)
        resized = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        assert torch.allclose(feats, saved(resized), atol=1e-4)
        assert loaded.logits(feats).shape == (1, 1008)


# -------------------------------------------------------------------------------------------- LPIPS


@pytest.fixture(scope="module")
def tv_alexnet():
    torch.manual_seed(5)
    return torchvision.models.alexnet(weights=None)


def test_lpips_backbone_from_torchvision_checkpoint(env, tv_alexnet):
    path = env["cache"] / WEIGHTS["alexnet"].filename
    path.parent.mkdir(parents=True)
    torch.save(tv_alexnet.state_dict(), path)
    try:
        net = lpips_network("alex", backbone_weights="imagenet")
    finally:
        path.unlink()  # 244 MB
    for index in (0, 3, 6, 8, 10):  # the five convolutions of AlexNet's features
        conv = tv_alexnet.features[index]
        mine = dict(net.net.named_modules())
        slice_conv = next(
            m for name, m in mine.items() if name.endswith(f".{index}") and isinstance(m, nn.Conv2d)
        )
        assert torch.equal(slice_conv.weight, conv.weight) and torch.equal(slice_conv.bias, conv.bias)
    net.train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(net(x, x), torch.zeros(2, 1, 1, 1))
        d_xy, d_yx = net(x, y), net(y, x)
    assert (d_xy > 0).all() and torch.allclose(d_xy, d_yx, atol=1e-6)


def test_lpips_backbone_missing_offline(env):
    with pytest.raises(WeightsNotFoundError, match="backbone_weights=PATH"):
        lpips_network("alex")
    with pytest.raises(ValueError, match="alex"):
        lpips_network("resnet")


def test_lpips_random_backbone_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(lpips_net, "_warned_random", False)
    with caplog.at_level(logging.WARNING, logger="facezoo.nets.lpips_net"):
        lpips_network("alex", backbone_weights=None)
        lpips_network("alex", backbone_weights=None)
    warnings_seen = [r for r in caplog.records if "not comparable" in r.getMessage()]
    assert len(warnings_seen) == 1


def test_bf16_fast_path_casts_inputs_and_outputs_inside_containers():
    from facezoo.nets.precision import bf16_fast_path

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, image, extra=None):
            assert image.dtype == extra["scale"].dtype == torch.bfloat16 and extra["index"].dtype == torch.int64
            return {"image": self.conv(image) * extra["scale"], "index": extra["index"]}

    torch.manual_seed(0)
    net = Net()
    image, extra = torch.randn(2, 3, 8, 8), {"scale": torch.tensor(2.0), "index": torch.arange(2)}
    with torch.no_grad():
        exact = net.conv(image) * 2
        fast = bf16_fast_path(bf16_fast_path(net))                       # twice: hooks registered once
        out = fast(image, extra=extra)
    assert out["image"].dtype == torch.float32 and out["index"].dtype == torch.int64 and not fast.training
    assert len(fast._forward_pre_hooks) == 1 and torch.allclose(out["image"], exact, atol=0.05)
    assert not torch.equal(out["image"], exact)                              # bf16 did run
