"""Tests for facezoo.methods.tpgan.official (the iwtw/pytorch-TP-GAN port's files) and the port's TPGANArch.

Parity runs against ``tests/fixtures/tpgan_iwtw.pt``, written by ``scripts/fixtures/make_tpgan_iwtw.py --official
CHECKOUT`` from the port's own ``network.py`` on seeded weights and inputs. With
``FACEZOO_OFFICIAL_TPGAN=CHECKOUT`` (a checkout of iwtw/pytorch-TP-GAN) the port's code also runs live here.
"""

from __future__ import annotations

import argparse
import doctest
import importlib.util
import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from facezoo.methods.tpgan import official
from facezoo.methods.tpgan.networks import (
    ARCHS,
    PART_NAMES,
    Conv2dSame,
    ConvLayer,
    ConvTranspose2dSame,
    Discriminator,
    Maxout,
    ResidualBlock,
    TPGANArch,
    TPGANGenerator,
    part_boxes,
    part_geometry,
    resolve_arch,
)
from facezoo.methods.tpgan.official import (
    build,
    find_run_files,
    infer_architecture,
    load_official,
    load_part,
    official_key_map,
    official_shapes,
    seeded_official_state_dict,
    to_official_state_dict,
)
from facezoo.utils import FacezooError

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "tpgan_iwtw.pt"
TOL = 1e-4


def _script():
    path = ROOT / "scripts" / "fixtures" / "make_tpgan_iwtw.py"
    spec = importlib.util.spec_from_file_location("make_tpgan_iwtw", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()


def _norm(case: str) -> str:
    return "batch" if SCRIPT.CASES[case][1] else "none"


def _meta(part: str, **overrides) -> nn.Module:
    with torch.device("meta"):
        return build(part, **overrides)


def seeded_state(case: str) -> dict:
    """The port-format state dict of a parity case, with the seeded weights (layout from facezoo's key map)."""
    part = SCRIPT.CASES[case][0]
    return seeded_official_state_dict(official_shapes(_meta(part, norm=_norm(case))), SCRIPT.SEED)


def save_port_file(state: dict, path: Path) -> Path:
    """As the port's ``utils.py: save_model`` on PyTorch 0.3: legacy serialisation, no ``num_batches_tracked``."""
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path


def assert_matches_fixture(case: str, outputs: dict) -> None:
    entry = torch.load(FIXTURE, weights_only=True)[case]["outputs"]
    expected = SCRIPT.split_digests(entry)
    assert list(outputs) == entry["names"]
    for (name, tensor), shape in zip(outputs.items(), entry["shapes"]):
        assert list(tensor.shape) == shape, name
        diff = (SCRIPT.digest(tensor) - expected[name]).abs().max().item()
        assert diff < TOL, f"{case} {name}: max abs difference {diff:.2e}"


# ------------------------------------------------------------------ parity with the port's code


@pytest.mark.parametrize("case", list(SCRIPT.CASES))
def test_key_layout_is_the_ports(case):
    """facezoo's mapped names and shapes are exactly the port's state dict (count + SHA-256 of key/shape lines)."""
    part = SCRIPT.CASES[case][0]
    expected = torch.load(FIXTURE, weights_only=True)[case]["keys"]
    assert SCRIPT.key_digest(official_shapes(_meta(part, norm=_norm(case)))) == expected


@pytest.mark.parametrize("case", ["D", "D_bn"])
def test_discriminator_parity_with_port_fixture(tmp_path, case):
    path = save_port_file(seeded_state(case), tmp_path / "Discriminator_epoch0.pth")
    net = load_part(path, "D")
    assert not net.training and isinstance(net.conv1[1], nn.BatchNorm2d) == (case == "D_bn")
    assert_matches_fixture(case, SCRIPT.facezoo_outputs(net, case))


def _generator_parity(tmp_path, case):
    run = tmp_path / "run"
    run.mkdir()
    save_port_file(seeded_state(case), run / "Generator_epoch3.pth")
    save_port_file(seeded_state(case.replace("G", "D")), run / "Discriminator_epoch3.pth")
    (run / "Generator_epoch1.pth").write_bytes(b"")  # an older epoch: the run directory loads the latest
    generator, discriminator = load_official(run)
    assert (generator.zdim, generator.global_pathway.identity_head.fc.out_features) == (64, 347)
    assert not generator.training and not discriminator.training
    assert generator.arch == ARCHS["iwtw"]
    assert_matches_fixture(case, SCRIPT.facezoo_outputs(generator, case))
    assert_matches_fixture(case.replace("G", "D"), SCRIPT.facezoo_outputs(discriminator, case.replace("G", "D")))


def test_generator_parity_with_port_fixture(tmp_path):
    """The port's config.py network (no BatchNorm): a run directory in its format loads strictly, same outputs."""
    _generator_parity(tmp_path, "G")


@pytest.mark.slow
def test_generator_with_batchnorm_parity_with_port_fixture(tmp_path):
    """use_batchnorm=True (the Generator class default): BN after the activation, none in residual blocks."""
    _generator_parity(tmp_path, "G_bn")


OFFICIAL = os.environ.get("FACEZOO_OFFICIAL_TPGAN")


@pytest.mark.slow
@pytest.mark.skipif(not OFFICIAL, reason="set FACEZOO_OFFICIAL_TPGAN to an iwtw/pytorch-TP-GAN checkout")
@pytest.mark.parametrize("case", list(SCRIPT.CASES))
def test_parity_with_port_live(tmp_path, case):
    """The port's own network saves a file facezoo loads strictly; full outputs agree to < 1e-4."""
    part = SCRIPT.CASES[case][0]
    with SCRIPT.port_runtime(OFFICIAL) as network:
        port = SCRIPT.seeded_port_network(network, case)
        theirs = SCRIPT.run_port(network, case, port)
    path = tmp_path / official.PARTS[part][1].format(epoch=0)
    torch.save(port.state_dict(), path)  # utils.py: save_model (the module inside DataParallel)
    del port
    ours = SCRIPT.facezoo_outputs(load_part(path, part), case)
    assert list(ours) == list(theirs)
    for name in ours:
        diff = (ours[name] - theirs[name]).abs().max().item()
        assert diff < TOL, f"{case} {name}: max abs difference {diff:.2e}"


# ------------------------------------------------------------------ files


def _d_file(tmp_path: Path, edit=None, case: str = "D", name: str = "d.pth") -> Path:
    state = dict(seeded_state(case))
    if edit is not None:
        edit(state)
    torch.save(state, tmp_path / name)
    return tmp_path / name


def test_round_trip_and_missing_num_batches_tracked(tmp_path):
    """A PyTorch 0.3 file (no num_batches_tracked) loads; saving back in the port's format gives the same tensors."""
    state = seeded_state("D_bn")
    net = load_part(save_port_file(state, tmp_path / "d.pth"), "D")
    back = to_official_state_dict(net)
    assert list(back) == list(official_shapes(net))
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            assert back[key] == 0
        else:
            torch.testing.assert_close(back[key], value, rtol=0, atol=0)


def test_module_prefix_is_stripped(tmp_path):
    load_part(_d_file(tmp_path, lambda s: s.update({f"module.{k}": s.pop(k) for k in list(s)})), "D")


def test_refuses_a_missing_key(tmp_path):
    path = _d_file(tmp_path, lambda s: s.pop("model.7.0.weight"))
    with pytest.raises(FacezooError, match=r"not an iwtw/pytorch-TP-GAN D state dict \(missing model\.7\.0\.weight\)"):
        load_part(path, "D")


def test_refuses_unexpected_keys_naming_the_first_few(tmp_path):
    path = _d_file(tmp_path, lambda s: s.update({f"extra.{i}": torch.zeros(1) for i in range(5)}))
    with pytest.raises(FacezooError, match=r"unexpected extra\.0, extra\.1, extra\.2 \(\+2 more\)\)$") as err:
        load_part(path, "D")
    assert "\n" not in str(err.value)


def test_refuses_a_wrong_shape(tmp_path):
    path = _d_file(tmp_path, lambda s: s.update({"model.7.0.weight": torch.zeros(1, 512, 1, 1)}))
    message = r"model\.7\.0\.weight has shape \(1, 512, 1, 1\), .* needs \(1, 512, 3, 3\)"
    with pytest.raises(FacezooError, match=message):
        load_part(path, "D")


def test_refuses_the_wrong_architecture_override(tmp_path):
    """A file without BatchNorm forced into a BatchNorm network names the missing BN entries."""
    with pytest.raises(FacezooError, match=r"missing model\.0\.2\.bias, model\.0\.2\.running_mean"):
        load_part(_d_file(tmp_path), "D", norm="batch")
    with pytest.raises(ValueError, match="bad architecture overrides for part D"):
        load_part(_d_file(tmp_path), "D", zdim=3)


def test_refuses_files_that_are_not_state_dicts(tmp_path):
    for obj in ([torch.zeros(1)], torch.zeros(3), {"a": 1}):
        torch.save(obj, tmp_path / "x.pth")
        with pytest.raises(FacezooError, match="x.pth is not a readable state dict: "):
            load_part(tmp_path / "x.pth", "D")
    (tmp_path / "x.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(FacezooError, match="not a readable state dict: cannot read weights") as err:
        load_part(tmp_path / "x.pth", "D")
    assert str(err.value).count("x.pth") == 1, err.value
    with pytest.raises(FacezooError, match="no such file"):
        load_official(tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="part must be one of G, D"):
        load_part(tmp_path / "x.pth", "E")


def test_refuses_pickled_objects(tmp_path):
    """Files are read with weights_only=True: pickled objects are refused, not executed."""
    torch.save({"opt": argparse.Namespace(zdim=64)}, tmp_path / "obj.pth")
    with pytest.raises(FacezooError, match="not a readable state dict: holds a pickled argparse.Namespace") as err:
        load_part(tmp_path / "obj.pth", "D")
    assert "trust_checkpoint" not in str(err.value)   # this loader never unpickles: no advice that would not help


def test_find_run_files(tmp_path):
    with pytest.raises(FacezooError, match="has no Generator_epoch"):
        find_run_files(tmp_path)
    names = ("Generator_epoch2.pth", "Generator_epoch10.pth", "Discriminator_epoch2.pth", "Adam_Generator_epoch11.pth")
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert find_run_files(tmp_path) == (tmp_path / "Generator_epoch10.pth", None)
    assert find_run_files(tmp_path, 2) == (tmp_path / "Generator_epoch2.pth", tmp_path / "Discriminator_epoch2.pth")
    with pytest.raises(FacezooError, match="Generator_epoch5.pth: no such file"):
        find_run_files(tmp_path, 5)


def test_infer_architecture_reads_zdim_classes_and_batchnorm():
    with torch.device("meta"):
        g = build("G", zdim=10, num_classes=5, norm="batch")
        state = {k: torch.empty(s) for k, s in official_shapes(g).items()}
    assert infer_architecture(state, "G") == {"norm": "batch", "zdim": 10, "num_classes": 5}
    assert infer_architecture({}, "D") == {"norm": "none"}


def test_key_map_examples_and_refusal_of_other_layouts():
    g = _meta("G")
    mapping = official_key_map(g)
    assert mapping["local_pathways.right_eye.res3.0.conv1.0.weight"] == (
        "local_pathway_right_eye.conv3.1.layers.0.0.weight")
    assert mapping["global_pathway.encoder.res4.3.conv2.0.bias"] == "global_pathway.conv4.4.layers.1.0.bias"
    assert mapping["global_pathway.decoder.decode_s16.1.conv1.0.weight"] == (
        "global_pathway.reconstruct_8.1.layers.0.1.weight")
    assert mapping["global_pathway.decoder.initial.weight"] == "global_pathway.initial_8.0.weight"
    assert mapping["global_pathway.identity_head.fc.bias"] == "feature_predict.fc.bias"
    assert official_key_map(_meta("G", norm="batch"))["global_pathway.decoder.initial_norm.running_var"] == (
        "global_pathway.initial_8.2.running_var")
    assert official_key_map(_meta("D", norm="batch"))["conv4.1.weight"] == "model.5.2.weight"
    with pytest.raises(ValueError, match="no counterpart in the iwtw port's G"):
        official_key_map(TPGANGenerator(image_size=64, width=0.125, num_classes=3))  # TF layout


def test_docstring_examples_run():
    assert doctest.testmod(official, raise_on_error=True).failed == 0


# ------------------------------------------------------------------ the config


def test_config_is_tpgan_with_the_ports_architecture():
    """conf/model/tpgan_iwtw.yaml composes tpgan: the port's architecture (zdim, norm, arch = ARCHS) and its
    training constants in facezoo's terms (WGAN-GP 10, the config.py weights)."""
    cfg = OmegaConf.load(ROOT / "conf" / "model" / "tpgan_iwtw.yaml")
    assert set(cfg) == {"defaults", "zdim", "norm", "arch", "adversarial", "loss"}
    assert cfg.adversarial == "wgan" and cfg.loss.d.gradient_penalty == 10.0
    assert dict(cfg.loss.g) == {"pixel": 1.0, "local": 3.0, "symmetry": 0.3, "adversarial": 1e-3, "identity": 30.0,
                                "tv": 1e-3, "cross_entropy": 10.0}
    assert list(cfg.defaults) == ["tpgan"]
    assert resolve_arch(cfg.arch) == ARCHS["iwtw"]
    assert (cfg.zdim, cfg.norm) == (official.PORT_DEFAULTS["G"]["zdim"], official.PORT_DEFAULTS["G"]["norm"])


def test_arch_resolution_and_errors():
    assert resolve_arch(None) == TPGANArch() == ARCHS["tf"] and resolve_arch("iwtw") is ARCHS["iwtw"]
    assert resolve_arch({"slope": 0.1}) == TPGANArch(slope=0.1)
    with pytest.raises(ValueError, match="arch must be one of"):
        resolve_arch("keras")
    with pytest.raises(ValueError, match=r"unknown arch field\(s\) \['slop'\]"):
        resolve_arch({"slop": 0.1})
    with pytest.raises(ValueError, match="arch.padding must be one of"):
        TPGANArch(padding="valid")
    with pytest.raises(ValueError, match="arch.slope"):
        TPGANArch(slope=-1)


# ------------------------------------------------------------------ the port's layer semantics


def test_torch_geometry_convolutions_are_pytorch_layers():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    for kernel, stride in ((3, 2), (5, 2), (7, 1), (3, 1)):
        ours = Conv2dSame(3, 4, kernel, stride, geometry="torch").double()
        ref = nn.Conv2d(3, 4, kernel, stride, (kernel - 1) // 2).double()
        ref.load_state_dict(ours.state_dict())
        torch.testing.assert_close(ours(x), ref(x))
    ours = Conv2dSame(3, 4, 2, geometry="torch").double()  # the port's 2x2 blocks: ReflectionPad2d((1, 0, 1, 0))
    ref = nn.Sequential(nn.ReflectionPad2d((1, 0, 1, 0)), nn.Conv2d(3, 4, 2)).double()
    ref[1].load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x), ref(x))
    y = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    for stride, padding in ((2, 1), (4, 0)):  # the port's deconv(.., 3, 2, 1, 1) and initial_32 deconv(.., 3, 4, 0, 1)
        ours = ConvTranspose2dSame(4, 3, 3, stride, geometry="torch").double()
        ref = nn.ConvTranspose2d(4, 3, 3, stride, padding, output_padding=1).double()
        ref.load_state_dict(ours.state_dict())
        torch.testing.assert_close(ours(y, (5 * stride, 6 * stride)), ref(y))


def test_iwtw_layer_order_slope_and_residual_norm():
    arch = ARCHS["iwtw"]
    layer = ConvLayer(3, 4, 3, 1, "batch", "lrelu", arch).eval()
    layer[1].running_mean.fill_(0.5)
    x = torch.randn(1, 3, 6, 6)
    torch.testing.assert_close(layer(x), layer[1](nn.functional.leaky_relu(layer[0](x), 0.01)))
    block = ResidualBlock(4, 3, "batch", arch)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules()) and block.act.negative_slope == 0.01
    assert sum(isinstance(m, nn.BatchNorm2d) for m in ResidualBlock(4, 3, "batch").modules()) == 2


def test_maxout_pairs_is_maxpool1d():
    x = torch.randn(3, 512)
    torch.testing.assert_close(Maxout("pairs")(x), nn.MaxPool1d(2, 2)(x.view(3, -1, 2)).view(3, -1))


def test_iwtw_part_boxes_are_the_ports_localfuser_pads():
    """network.py LocalFuser: pad (cx - W//2 - 1, 128 - (cx + W//2 - 1), cy - H//2 - 1, ...) per part."""
    centres = {"left_eye": (39, 40), "right_eye": (86, 39), "nose": (64, 64), "mouth": (65, 89)}
    for name, (top, left, h, w) in part_boxes(128, "iwtw").items():
        cx, cy = centres[name]
        assert (top, left) == (cy - h // 2 - 1, cx - w // 2 - 1)
        assert (128 - (cx + w // 2 - 1), 128 - (cy + h // 2 - 1)) == (128 - left - w, 128 - top - h)
    sizes = {layout: {n: s for n, (_, s) in part_geometry(128, layout).items()} for layout in ("tf", "iwtw")}
    assert sizes["tf"] == sizes["iwtw"]


def test_small_iwtw_generator_trains_and_samples_uniform_noise():
    """The port's layout also works at facezoo's CPU sizes (64 px, width 0.125), with gradients everywhere."""
    torch.manual_seed(0)
    g = TPGANGenerator(image_size=64, width=0.125, num_classes=5, zdim=8, norm="batch", arch="iwtw")
    d = Discriminator(64, 0.125, "batch", arch="iwtw")
    assert g.global_pathway.encoder.conv0[0].in_channels == 3 and g.local_pathways["right_eye"].in_channels == 3
    assert g.part_boxes == part_boxes(64, "iwtw")
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    patches = {n: torch.rand(2, 3, *s) * 2 - 1 for n, (_, s) in part_geometry(64).items()}
    out = g(image, patches, generator=torch.Generator().manual_seed(1))
    images = [out["image"], out["image_half"], out["image_quarter"]]  # image_quarter feeds s/2 detached
    (sum(x.square().mean() for x in images) + out["identity_logits"].mean() + d(out["image"]).mean()).backward()
    assert all(p.grad is not None for p in [*g.parameters(), *d.parameters()])
    z = g.sample_noise(1000, torch.Generator().manual_seed(0))
    assert z.shape == (1000, 8) and -1 <= z.min() < -0.99 and 0.99 < z.max() <= 1
    assert set(out["parts"]) == set(PART_NAMES) and out["image"].shape == (2, 3, 64, 64)


def test_kaiming_initialisation_as_the_port():
    """layers.py: kaiming-normal (a = slope) on layers followed by an activation, PyTorch defaults elsewhere."""
    torch.manual_seed(0)
    layer = ConvLayer(64, 256, 3, 1, "none", "lrelu", ARCHS["iwtw"])
    std = (2 / (1 + 0.01**2) / (64 * 9)) ** 0.5
    assert abs(layer[0].weight.std().item() / std - 1) < 0.02
    plain = ConvLayer(64, 256, 3, 1, "none", None, ARCHS["iwtw"])
    assert plain[0].weight.abs().max() <= 1 / (64 * 9) ** 0.5  # kaiming_uniform(a=sqrt(5)) bound
