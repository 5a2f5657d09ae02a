"""facezoo.face.detect: dlib (real, offline) and face-alignment (random weights in its file format)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

import facezoo.face.detect as detect
from facezoo.face.detect import DlibDetector, Face, FaceAlignmentDetector, get_detector, largest_face
from facezoo.nets.weights import WeightsNotFoundError
from facezoo.utils import FacezooError


@pytest.fixture(scope="module")
def dlib_detector():
    return DlibDetector()


@pytest.fixture
def no_cached_weights(tmp_path, monkeypatch):
    """Empty facezoo cache and torch hub dir: no face-alignment weights anywhere."""
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")


def _two_astronauts() -> np.ndarray:
    """The astronaut's head at full size (256 px) and at 3/4 size side by side on white."""
    head = skimage.data.astronaut()[20:276, 90:346]
    canvas = np.full((256, 448, 3), 255, np.uint8)
    canvas[:, :256] = head
    canvas[:192, 256:] = np.asarray(Image.fromarray(head).resize((192, 192), Image.LANCZOS))
    return canvas


def test_dlib_finds_the_astronaut_with_plausible_landmarks(dlib_detector):
    faces = dlib_detector.detect(skimage.data.astronaut())
    assert len(faces) == 1                                         # official 361-px detection: one face
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert 150 < x0 < 200 and 60 < y0 < 100 and 80 < x1 - x0 < 110 and 80 < y1 - y0 < 110
    lms = face.landmarks
    assert lms.shape == (68, 2) and lms.dtype == np.float32
    left_eye, right_eye = lms[36:42].mean(0), lms[42:48].mean(0)
    nose_tip, mouth = lms[30], lms[48:68].mean(0)
    assert left_eye[0] < nose_tip[0] < right_eye[0]               # x: image-left eye, nose, image-right eye
    assert max(left_eye[1], right_eye[1]) < nose_tip[1] < mouth[1]  # y: eyes above the nose above the mouth
    inside = (lms[:, 0] > x0 - 10) & (lms[:, 0] < x1 + 10) & (lms[:, 1] > y0 - 10) & (lms[:, 1] < y1 + 10)
    assert inside.all()


def test_detection_on_the_shrunk_image_agrees_with_full_resolution(dlib_detector):
    img = skimage.data.astronaut()
    small = dlib_detector.detect(img)[0]
    full = max(DlibDetector(max_side=None).detect(img), key=lambda f: f.score)
    assert np.abs(np.subtract(small.box, full.box)).max() < 12     # boxes scaled back to full resolution
    assert np.abs(small.landmarks - full.landmarks).mean() < 4     # landmarks always at full resolution


def test_several_faces_pick_the_largest_and_say_so(dlib_detector, caplog):
    faces = dlib_detector.detect(_two_astronauts())
    assert len(faces) == 2
    with caplog.at_level(logging.INFO, logger="facezoo.face.detect"):
        best = largest_face(faces, name="pair.png")
    assert best.box[0] < 256 and best.area == max(f.area for f in faces)   # the full-size head (left)
    assert "pair.png: found 2 faces; using the largest" in caplog.text


def test_no_face(dlib_detector):
    assert dlib_detector.detect(np.full((200, 200, 3), 128, np.uint8)) == []
    with pytest.raises(FacezooError, match="blank.png: no face found"):
        largest_face([], name="blank.png")


def test_largest_face_breaks_ties_by_score_and_checks_input():
    zeros = np.zeros((68, 2))
    a, b = Face((0, 0, 10, 10), zeros, 0.1), Face((20, 0, 30, 10), zeros, 0.9)
    assert largest_face([a, b]) is b
    with pytest.raises(ValueError, match="68, 2"):
        Face((0, 0, 1, 1), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="uint8"):
        DlibDetector.detect(None, np.zeros((10, 10, 3), np.float32))


def test_face_alignment_without_weights_fails_in_one_line_before_any_download(no_cached_weights, monkeypatch,
                                                                             tmp_path):
    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(WeightsNotFoundError) as info:
        FaceAlignmentDetector()
    text = str(info.value)
    assert "s3fd-619a316812.pth" in text and "weights_dir=" in text and "\n" not in text
    (tmp_path / "s3fd-619a316812.pth").write_bytes(b"only the detector")
    with pytest.raises(WeightsNotFoundError, match="2DFAN4-11f355bf06.pth.tar"):
        get_detector("face_alignment", weights_dir=tmp_path)


def test_auto_falls_back_to_dlib_and_says_so_once(no_cached_weights, monkeypatch, caplog):
    monkeypatch.setattr(detect, "_fallback_logged", False)
    with caplog.at_level(logging.INFO, logger="facezoo.face.detect"):
        first, second = get_detector("auto"), get_detector("auto")
    assert isinstance(first, DlibDetector) and isinstance(second, DlibDetector)
    assert caplog.text.count("using the dlib landmark backend") == 1
    with pytest.raises(FacezooError, match="unknown detector 'mtcnn'"):
        get_detector("mtcnn")


@pytest.fixture(scope="module")
def face_alignment_weights(tmp_path_factory):
    """Randomly initialised S3FD and 2D-FAN-4 saved under their released file names."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    d = tmp_path_factory.mktemp("fa_weights")
    torch.manual_seed(0)
    torch.save(s3fd().state_dict(), d / "s3fd-619a316812.pth")
    torch.save(FAN(4).state_dict(), d / "2DFAN4-11f355bf06.pth.tar")
    return d


def test_face_alignment_loads_local_files_and_returns_faces(face_alignment_weights, no_cached_weights,
                                                            monkeypatch, caplog):
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("download"))
    monkeypatch.setattr(detect, "_fallback_logged", False)
    hub_dir = torch.hub.get_dir()
    with caplog.at_level(logging.INFO, logger="facezoo.face.detect"):
        det = get_detector("auto", weights_dir=face_alignment_weights)
    assert torch.hub.get_dir() == hub_dir                                  # the temporary hub dir is undone
    assert isinstance(det, FaceAlignmentDetector) and "dlib" not in caplog.text
    fan = det.model.face_alignment_net
    expected = torch.load(face_alignment_weights / "2DFAN4-11f355bf06.pth.tar", weights_only=True)
    assert all(torch.equal(v, expected[k]) for k, v in fan.state_dict().items())   # our file, not a download

    # FAN on CPU takes seconds per face: check the conversion of face-alignment's answer with a stand-in
    lms = np.arange(136, dtype=np.float32).reshape(68, 2)
    answer = ([lms, lms + 1], None, [np.array([8.0, 6.0, 56.0, 60.0, 0.75]), np.array([1.0, 2.0, 3.0, 4.0, 0.5])])
    det.model.get_landmarks_from_image = lambda image, return_bboxes: answer
    image = np.zeros((64, 64, 3), np.uint8)
    first, second = det.detect(image)
    assert first.box == (8.0, 6.0, 56.0, 60.0) and first.score == 0.75 and np.array_equal(first.landmarks, lms)
    assert second.score == 0.5 and np.array_equal(second.landmarks, lms + 1)
    det.model.get_landmarks_from_image = lambda image, return_bboxes: (None, None, None)
    assert det.detect(image) == []
