"""MNIST loader: scikit-learn digits fallback, guarded torchvision, messages, shapes."""

import sys
import types

import pytest
import torch

from course_lib.data import load_mnist
from course_lib.data.mnist import digits_split, resize


def test_digits_source_shapes_range_and_message(capsys):
    images, labels = load_mnist(source="digits")
    out = capsys.readouterr().out
    assert "scikit-learn's 8×8 digits" in out and "32×32" in out
    assert images.shape == (1437, 1, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (1437,) and labels.dtype == torch.long
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert set(labels.tolist()) == set(range(10))
    test = load_mnist(train=False, source="digits", verbose=False)
    assert test.images.shape == (360, 1, 32, 32) and test.source == "sklearn-digits"


def test_resize_preserves_a_constant_and_the_mean_roughly():
    raw, _ = digits_split(train=True)
    big = resize(raw[:50])
    # bilinear resizing by 4 keeps the average ink of each image within a few percent
    torch.testing.assert_close(big.mean((1, 2, 3)), raw[:50].mean((1, 2, 3)), atol=0.03, rtol=0.05)
    torch.testing.assert_close(resize(torch.full((2, 1, 8, 8), 0.5)), torch.full((2, 1, 32, 32), 0.5))


def _fake_torchvision(monkeypatch, mnist):
    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(MNIST=mnist)
    monkeypatch.setitem(sys.modules, "torchvision", fake)


def test_auto_falls_back_when_download_fails(monkeypatch, tmp_path, capsys):
    def broken(root, train, download):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    _fake_torchvision(monkeypatch, broken)
    data = load_mnist(root=tmp_path)
    out = capsys.readouterr().out
    assert data.source == "sklearn-digits"
    assert "RuntimeError: Error downloading" in out
    with pytest.raises(RuntimeError, match="source='digits'"):
        load_mnist(source="torchvision", root=tmp_path)


def test_the_download_has_a_timeout_and_puts_the_default_back(monkeypatch, tmp_path):
    import socket

    from course_lib.data import mnist

    seen = []

    def silent_network(root, train, download):
        seen.append(socket.getdefaulttimeout())
        raise TimeoutError("timed out")

    _fake_torchvision(monkeypatch, silent_network)
    before = socket.getdefaulttimeout()
    data = load_mnist(root=tmp_path, verbose=False)
    assert seen == [mnist.DOWNLOAD_TIMEOUT] and socket.getdefaulttimeout() == before
    assert data.source == "sklearn-digits" and "TimeoutError: timed out" in data.message


def test_a_torchvision_build_that_does_not_match_torch_is_named(monkeypatch, tmp_path):
    def broken(root, train, download):
        raise RuntimeError("operator torchvision::nms does not exist")

    _fake_torchvision(monkeypatch, broken)
    data = load_mnist(root=tmp_path, verbose=False)
    assert data.source == "sklearn-digits"
    assert "torchvision::nms does not exist: this torchvision build does not match the installed torch" in data.message


def test_auto_falls_back_when_torchvision_is_missing(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import raises ImportError
    data = load_mnist(root=tmp_path, verbose=False)
    assert data.source == "sklearn-digits" and "Error" in data.message and "unavailable" in data.message


def test_torchvision_path_when_it_works(monkeypatch, tmp_path, capsys):
    def fake_mnist(root, train, download):
        return types.SimpleNamespace(data=torch.full((3, 28, 28), 255, dtype=torch.uint8),
                                     targets=torch.tensor([1, 2, 3]))

    _fake_torchvision(monkeypatch, fake_mnist)
    images, labels = data = load_mnist(root=tmp_path)
    assert data.source == "torchvision-mnist" and "torchvision's MNIST" in capsys.readouterr().out
    assert images.shape == (3, 1, 32, 32)
    torch.testing.assert_close(images, torch.ones(3, 1, 32, 32))
    assert labels.tolist() == [1, 2, 3]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown source"):
        load_mnist(source="emnist")
    with pytest.raises(ValueError, match="size"):
        load_mnist(source="digits", size=4)
    with pytest.raises(ValueError, match="N×1×h×w"):
        resize(torch.zeros(2, 8, 8))


def test_digits_images_and_labels_stay_paired_with_scikit_learns():
    """Every training image is scikit-learn's digit i (i % 5 != 0; the others are the test split),
    scaled to [0, 1] and resized, with scikit-learn's label i."""
    from sklearn.datasets import load_digits

    d = load_digits()
    for train, keep in ((True, lambda i: i % 5 != 0), (False, lambda i: i % 5 == 0)):
        data = load_mnist(train=train, source="digits", verbose=False)
        index = torch.tensor([i for i in range(len(d.target)) if keep(i)])
        raw = torch.as_tensor(d.images, dtype=torch.float32)[index].unsqueeze(1) / 16.0
        torch.testing.assert_close(data.images, resize(raw))
        assert torch.equal(data.labels, torch.as_tensor(d.target)[index])
