"""Tests of the encoding layer (course_lib.metrics.encode) with a small fake data set and model,
plus one smoke test against the real DSprites and β-VAE when they import."""

import numpy as np
import pytest
import torch

from course_lib.metrics import factor_vae_score, mig
from course_lib.metrics.encode import codes_of_model, encode_dataset
from course_lib.metrics.synthetic import grid_classes

SIZES = (2, 3, 4)


class FakeData:
    """Ground-truth interface of DSprites on a 2×3×4 grid; image = the classes as pixels."""

    factor_sizes = SIZES

    def __len__(self):
        return 24

    def index_to_classes(self, index):
        index = torch.as_tensor(index)
        bases = torch.tensor([12, 4, 1], device=index.device)
        return (index[:, None] // bases) % torch.tensor(SIZES, device=index.device)

    def sample_classes(self, n, generator=None, device=None):
        cols = [torch.randint(s, (n,), generator=generator) for s in SIZES]
        return torch.stack(cols, 1).to(device or "cpu")

    def images(self, classes):
        x = torch.zeros(classes.shape[0], 1, 2, 2, device=classes.device)
        x.view(-1, 4)[:, :3] = classes.float()
        return x


class FakeVAE(torch.nn.Module):
    """encode: mu = 2 * classes + 1 (a perfect code), logvar = -classes; records its mode."""

    def __init__(self, with_logvar=True):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0))
        self.with_logvar = with_logvar
        self.seen = []

    def encode(self, x):
        self.seen.append((self.training, torch.is_inference_mode_enabled(), x.shape[0]))
        c = x.flatten(1)[:, :3]
        mu = self.scale * c + 1
        return (mu, -c) if self.with_logvar else (mu, None)


def test_whole_dataset_in_order_in_chunks():
    model = FakeVAE()
    model.train()
    mu, logvar, classes = encode_dataset(model, FakeData(), batch_size=5)
    np.testing.assert_array_equal(classes, grid_classes(SIZES))
    np.testing.assert_allclose(mu, 2 * grid_classes(SIZES) + 1)
    np.testing.assert_allclose(logvar, -grid_classes(SIZES))
    assert mu.dtype == np.float32 and classes.dtype == np.int64
    assert [s[2] for s in model.seen] == [5, 5, 5, 5, 4]
    assert all(not training and inference for training, inference, _ in model.seen)
    assert model.training  # the previous mode is restored
    assert mig(mu, classes).score == pytest.approx(1.0)


def test_random_sample_is_reproducible_and_autoencoder_has_no_logvar():
    model = FakeVAE(with_logvar=False)
    a = encode_dataset(model, FakeData(), n=50, batch_size=16, seed=3)
    b = encode_dataset(model, FakeData(), n=50, generator=torch.Generator().manual_seed(3), progress=True)
    assert a.logvar is None and a.mu.shape == (50, 3) and a.classes.shape == (50, 3)
    np.testing.assert_array_equal(a.classes, b.classes)
    np.testing.assert_allclose(a.mu, 2 * a.classes + 1)
    c = encode_dataset(model, FakeData(), n=50, seed=4)
    assert not np.array_equal(a.classes, c.classes)


def test_codes_of_model_feeds_factor_vae_score():
    model = FakeVAE()
    codes_of = codes_of_model(model, FakeData(), batch_size=64)
    classes = torch.tensor([[1, 2, 3], [0, 0, 0]])
    np.testing.assert_allclose(codes_of(classes), [[3, 5, 7], [1, 1, 1]])
    r = factor_vae_score(codes_of, SIZES, n_train=100, n_eval=50, batch_size=16, n_variance=200)
    assert r.score == 1.0


def test_bad_model_and_arguments():
    with pytest.raises(TypeError, match="encode"):
        encode_dataset(torch.nn.Linear(2, 2), FakeData())
    with pytest.raises(ValueError, match="n must be"):
        encode_dataset(FakeVAE(), FakeData(), n=0)
    with pytest.raises(ValueError, match="batch_size"):
        encode_dataset(FakeVAE(), FakeData(), batch_size=0)


def test_real_dsprites_and_beta_vae_smoke():
    data = pytest.importorskip("course_lib.data")
    models = pytest.importorskip("course_lib.models")
    model = models.build_model("beta_vae", num_latents=4)
    ds = data.DSprites()
    enc = encode_dataset(model, ds, n=64, batch_size=32, seed=0)
    assert enc.mu.shape == (64, 4) and enc.logvar.shape == (64, 4) and enc.classes.shape == (64, 6)
    # the codes are the model's posterior of the images of the classes returned beside them
    with torch.no_grad():
        mu, logvar = model.eval().encode(ds.images(torch.as_tensor(enc.classes)))
    np.testing.assert_allclose(enc.mu, mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(enc.logvar, logvar.numpy(), rtol=1e-5, atol=1e-6)
    r = mig(enc.mu, enc.classes, factor_names=ds.factor_names)
    assert r.skipped == (0,) and 0.0 <= r.score <= 1.0  # colour has a single value
    fast = encode_dataset(model, ds, n=64, batch_size=32, seed=0, autocast=torch.bfloat16)
    np.testing.assert_array_equal(fast.classes, enc.classes)
    scale = np.abs(enc.mu).max()
    np.testing.assert_allclose(fast.mu, enc.mu, atol=0.02 * scale)  # bfloat16: ~3 digits


def test_encode_images_in_chunks_equals_one_call_in_eval_mode():
    from course_lib.metrics import encode_images

    torch.manual_seed(0)
    model = torch.nn.Module()
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Dropout(0.5))
    model.net = net
    model.encode = lambda x: tuple(net(x).chunk(2, dim=1))
    x = torch.randn(37, 1, 4, 4)
    model.train()
    mu, logvar = encode_images(model, x, batch_size=5)
    assert model.training  # the previous mode is restored
    model.eval()
    with torch.no_grad():
        want_mu, want_logvar = model.encode(x)
    # eval mode inside: dropout is off, so the chunks reproduce the single call exactly
    torch.testing.assert_close(mu, want_mu)
    torch.testing.assert_close(logvar, want_logvar)
    ae = torch.nn.Linear(16, 3)
    ae.encode = lambda x: (ae(x.flatten(1)), None)
    z, none = encode_images(ae, x, batch_size=8)
    assert none is None and z.shape == (37, 3)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        encode_images(model, x.flatten(1))
    with pytest.raises(ValueError, match="batch_size"):
        encode_images(model, x, batch_size=0)
