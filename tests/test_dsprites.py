"""Procedural dSprites: the factor grid, its indexing, the geometry of the rendered pixels,
and the original npz layout (export, read back, and every kind of bad file)."""

from __future__ import annotations

import math
import time
import zipfile

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from course_lib.data import DSprites, export_npz
from course_lib.data import dsprites as dsp

DS = DSprites()
ORIENTATIONS = np.linspace(0, 2 * np.pi, 40)
SCALES = np.linspace(0.5, 1.0, 6)


def render1(shape, scale=5, orientation=0, pos_x=0, pos_y=0) -> torch.Tensor:
    """One image (64×64) from class indices; shape 0 = square, 1 = ellipse, 2 = heart."""
    classes = torch.tensor([[0, shape, scale, orientation, pos_x, pos_y]])
    img = DS.images(classes)
    assert img.shape == (1, 1, 64, 64)
    return img[0, 0]


def pixels(img):
    """(rows, cols) of the lit pixels, as float64 arrays of pixel-centre coordinates."""
    r, c = np.nonzero(img.numpy())
    return r + 0.5, c + 0.5


def centroid(img):
    """(x, y) = (column, row) centre of mass of the lit pixels, in pixels."""
    r, c = pixels(img)
    return c.mean(), r.mean()


def extents(img):
    """(width along columns, height along rows) of the lit pixels' bounding box, in pixels."""
    rows, cols = np.nonzero(img.numpy())
    return cols.max() - cols.min() + 1, rows.max() - rows.min() + 1


def expected_centre(pos_x, pos_y):
    return 16 + 32 * pos_x / 31, 16 + 32 * pos_y / 31


# -- the factor grid and its indexing --------------------------------------------------------
def test_factor_grid_names_sizes_and_bases():
    assert DS.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert DS.factor_sizes == (1, 3, 6, 40, 32, 32)
    assert len(DS) == 737_280 == math.prod(DS.factor_sizes)
    assert DS.factor_bases == (737280, 245760, 40960, 1024, 32, 1)
    values = dsp.factor_values_table()
    assert [len(v) for v in values] == list(DS.factor_sizes)
    assert torch.allclose(values[2], torch.tensor(SCALES))
    assert values[3][0] == 0 and values[3][-1] == pytest.approx(2 * math.pi)
    assert values[4][-1] == 1 and values[5][0] == 0


def test_index_round_trip_on_the_whole_grid():
    index = torch.arange(len(DS))
    classes = DS.index_to_classes(index)
    assert classes.shape == (len(DS), 6) and classes.dtype == torch.long
    # an independent computation of the C-order (posY fastest) indexing
    expected = np.stack(np.unravel_index(index.numpy(), DS.factor_sizes), 1)
    assert np.array_equal(classes.numpy(), expected)
    assert torch.equal(DS.classes_to_index(classes), index)


@pytest.mark.parametrize("classes, index", [
    ([0, 0, 0, 0, 0, 1], 1),
    ([0, 0, 0, 0, 1, 0], 32),
    ([0, 0, 0, 1, 0, 0], 1024),
    ([0, 0, 1, 0, 0, 0], 40960),
    ([0, 1, 0, 0, 0, 0], 245760),
    ([0, 2, 5, 39, 31, 31], 737279),
    ([0, 1, 3, 17, 5, 9], 245760 + 3 * 40960 + 17 * 1024 + 5 * 32 + 9),
])
def test_classes_to_index_known_values(classes, index):
    assert DS.classes_to_index(torch.tensor([classes])).tolist() == [index]
    assert DS.index_to_classes(torch.tensor([index])).tolist() == [classes]


def test_bad_class_indices_are_explained():
    with pytest.raises(ValueError, match="posX.*0..31.*32"):
        DS.images(torch.tensor([[0, 0, 0, 0, 32, 0]]))
    with pytest.raises(ValueError, match="shape"):
        DS.classes_to_index(torch.tensor([[0, -1, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="N×6"):
        DS.images(torch.zeros(4, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="integers"):
        DS.images(torch.zeros(2, 6))
    with pytest.raises(ValueError, match="0..737279"):
        DS.index_to_classes(torch.tensor([737280]))


def test_sample_classes_follows_the_generator():
    a = DS.sample_classes(500, torch.Generator().manual_seed(3))
    b = DS.sample_classes(500, torch.Generator().manual_seed(3))
    c = DS.sample_classes(500, torch.Generator().manual_seed(4))
    assert a.shape == (500, 6) and a.dtype == torch.long
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # every factor uses its whole range, and nothing outside it
    for k, size in enumerate(DS.factor_sizes):
        assert int(a[:, k].min()) == 0 and int(a[:, k].max()) == size - 1


def test_sample_classes_is_roughly_uniform():
    classes = DS.sample_classes(6000, torch.Generator().manual_seed(0))
    counts = torch.bincount(classes[:, 1], minlength=3).float()
    assert ((counts - 2000).abs() < 200).all(), counts  # ~4.5 standard deviations
    counts = torch.bincount(classes[:, 2], minlength=6).float()
    assert ((counts - 1000).abs() < 150).all(), counts


def test_sample_classes_respects_class_ranges():
    ranges = {"posX": (0, 16), "shape": (2, 3), "orientation": (10, 12)}
    classes = DS.sample_classes(400, torch.Generator().manual_seed(1), class_ranges=ranges)
    assert set(classes[:, 4].tolist()) == set(range(16))
    assert set(classes[:, 1].tolist()) == {2}
    assert set(classes[:, 3].tolist()) == {10, 11}
    assert set(classes[:, 5].tolist()) == set(range(32))  # untouched factors keep their range
    sampler = DS.sampler(class_ranges={"posY": (20, 32)})
    imgs, cls = sampler.sample_with_classes(50, torch.Generator().manual_seed(2))
    assert (cls[:, 5] >= 20).all() and torch.equal(imgs, DS.images(cls))
    with pytest.raises(ValueError, match="unknown factor 'size'.*posX"):
        DS.sample_classes(3, class_ranges={"size": (0, 1)})
    with pytest.raises(ValueError, match="0 <= low < high <= 32"):
        DS.sample_classes(3, class_ranges={"posX": (5, 40)})
    with pytest.raises(ValueError, match="0 <= low < high <= 6"):
        DS.sampler(class_ranges={"scale": (3, 3)})


def test_dataset_protocol():
    assert isinstance(DS, torch.utils.data.Dataset)
    for index in (0, 1, 245760 + 40960 * 2 + 1024 * 7 + 32 * 3 + 30, 737279):
        img, classes = DS[index]
        assert img.shape == (1, 64, 64) and classes.shape == (6,)
        assert int(DS.classes_to_index(classes)) == index
        assert torch.equal(img, DS.images(classes.unsqueeze(0))[0])
    assert torch.equal(DS[-1][1], DS[737279][1])
    with pytest.raises(IndexError):
        DS[737280]
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(DS, [5, 70000, 600000]), batch_size=3)
    imgs, classes = next(iter(loader))
    assert imgs.shape == (3, 1, 64, 64)
    assert DS.classes_to_index(classes).tolist() == [5, 70000, 600000]


# -- geometry on rendered pixels ---------------------------------------------------------------
def test_pixels_are_hard_zero_one():
    classes = DS.sample_classes(256, torch.Generator().manual_seed(5))
    imgs = DS.images(classes)
    assert imgs.dtype == torch.float32 and imgs.shape == (256, 1, 64, 64)
    assert set(imgs.unique().tolist()) == {0.0, 1.0}
    assert (imgs.flatten(1).sum(1) > 20).all()  # every image holds a sprite
    as_bytes = DS.images(classes, dtype=torch.uint8)
    assert as_bytes.dtype == torch.uint8 and torch.equal(as_bytes.float(), imgs)


def test_square_at_scale_one_top_left_covers_rows_and_columns_6_to_25():
    img = render1(0, scale=5, orientation=0, pos_x=0, pos_y=0)
    rows, cols = np.nonzero(img.numpy())
    assert img.sum() == 400
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 25, 6, 25)


@pytest.mark.parametrize("shape", [0, 1])
@pytest.mark.parametrize("pos_x, pos_y", [(0, 0), (31, 0), (0, 31), (7, 22), (16, 16), (31, 31), (3, 12)])
def test_sprite_centre_follows_position(shape, pos_x, pos_y):
    cx, cy = centroid(render1(shape, scale=3, orientation=7, pos_x=pos_x, pos_y=pos_y))
    ex, ey = expected_centre(pos_x, pos_y)
    assert cx == pytest.approx(ex, abs=0.6) and cy == pytest.approx(ey, abs=0.6)


@pytest.mark.parametrize("pos_x, pos_y", [(0, 0), (31, 5), (12, 31)])
def test_heart_centre_follows_position(pos_x, pos_y):
    # the heart is not symmetric top/bottom, so check the centre of its bounding box
    img = render1(2, scale=5, pos_x=pos_x, pos_y=pos_y)
    rows, cols = np.nonzero(img.numpy())
    ex, ey = expected_centre(pos_x, pos_y)
    assert (cols.min() + cols.max() + 1) / 2 == pytest.approx(ex, abs=1.0)
    assert (rows.min() + rows.max() + 1) / 2 == pytest.approx(ey, abs=1.0)
    assert centroid(img)[0] == pytest.approx(ex, abs=0.6)  # symmetric left/right


def test_pos_x_moves_along_columns_and_pos_y_along_rows_from_the_top():
    base = centroid(render1(1, pos_x=10, pos_y=10))
    right = centroid(render1(1, pos_x=20, pos_y=10))
    down = centroid(render1(1, pos_x=10, pos_y=20))
    assert right[0] - base[0] == pytest.approx(320 / 31, abs=0.5) and right[1] == pytest.approx(base[1], abs=0.3)
    assert down[1] - base[1] == pytest.approx(320 / 31, abs=0.5) and down[0] == pytest.approx(base[0], abs=0.3)
    top = render1(0, pos_x=16, pos_y=0)
    assert top[:32].sum() == top.sum()  # posY = 0: the sprite is in the top half


@pytest.mark.parametrize("scale", range(6))
def test_sizes_follow_scale(scale):
    s = SCALES[scale]
    square = render1(0, scale, pos_x=13, pos_y=18)
    width, height = extents(square)
    assert width == pytest.approx(20 * s, abs=1) and height == pytest.approx(20 * s, abs=1)
    assert float(square.sum()) == pytest.approx((20 * s) ** 2, rel=0.12)
    ellipse = render1(1, scale, pos_x=13, pos_y=18)
    width, height = extents(ellipse)
    assert width == pytest.approx(26 * s, abs=1.5) and height == pytest.approx(14 * s, abs=1.5)
    assert float(ellipse.sum()) == pytest.approx(math.pi * 13 * 7 * s * s, rel=0.12)
    heart = render1(2, scale, pos_x=13, pos_y=18)
    width, height = extents(heart)
    assert width == pytest.approx(20 * s, abs=1.5) and height == pytest.approx(17 * s, abs=1.5)


@pytest.mark.parametrize("scale", [0, 5])
def test_heart_is_upright_with_the_point_down(scale):
    img = render1(2, scale, pos_x=16, pos_y=16).numpy()
    rows, cols = np.nonzero(img)
    mid = (rows.min() + rows.max() + 1) / 2
    top, bottom = (rows + 0.5 < mid).sum(), (rows + 0.5 > mid).sum()
    assert top > 1.2 * bottom  # the lobes are on top
    width = cols.max() - cols.min() + 1
    assert img[rows.max()].sum() <= max(3, width / 5)  # the lowest row is the narrow point
    # two lobes: the top row is lit in two separate runs
    top_row = img[rows.min()]
    runs = np.sum(np.diff(np.concatenate([[0], top_row, [0]])) == 1)
    assert runs == 2
    # turned by ~π (orientation 20 ≈ 185°) the point is on top
    rot = render1(2, scale, orientation=20, pos_x=16, pos_y=16).numpy()
    rows, _ = np.nonzero(rot)
    mid = (rows.min() + rows.max() + 1) / 2
    assert (rows + 0.5 > mid).sum() > 1.2 * (rows + 0.5 < mid).sum()


def principal_axis(img):
    """Angle of the long axis on screen, counter-clockwise from +x with y pointing UP (radians,
    in (−π/2, π/2])."""
    r, c = pixels(img)
    x, y = c - c.mean(), -(r - r.mean())
    cov = np.cov(np.stack([x, y]))
    evals, evecs = np.linalg.eigh(cov)
    vx, vy = evecs[:, -1]
    return math.atan2(vy, vx) if vx > 0 or (vx == 0 and vy > 0) else math.atan2(-vy, -vx)


def test_ellipse_long_axis_turns_counter_clockwise_on_screen():
    flat = render1(1, orientation=0, pos_x=16, pos_y=16)
    width, height = extents(flat)
    assert width > 1.6 * height  # long axis along the columns (x)
    upright = render1(1, orientation=10, pos_x=16, pos_y=16)  # 92.3°
    width, height = extents(upright)
    assert height > 1.6 * width  # long axis along the rows
    # 46° counter-clockwise on screen: the long axis runs from bottom-left to top-right
    tilted = render1(1, orientation=5, pos_x=16, pos_y=16)
    r, c = pixels(tilted)
    assert np.corrcoef(c, r)[0, 1] < -0.5  # further right = higher up = smaller row
    for k in (3, 5, 8, 13, 17):
        angle = principal_axis(render1(1, orientation=k, pos_x=16, pos_y=16))
        expected = (ORIENTATIONS[k] + np.pi / 2) % np.pi - np.pi / 2
        assert angle == pytest.approx(expected, abs=0.06), k


@pytest.mark.parametrize("shape", [0, 1])
@pytest.mark.parametrize("pos_x, pos_y", [(0, 0), (9, 27), (31, 31)])
def test_rotation_is_about_the_centre(shape, pos_x, pos_y):
    ex, ey = expected_centre(pos_x, pos_y)
    classes = torch.tensor([[0, shape, 5, k, pos_x, pos_y] for k in range(40)])
    imgs = DS.images(classes)[:, 0]
    for img in imgs:
        cx, cy = centroid(img)
        assert cx == pytest.approx(ex, abs=0.6) and cy == pytest.approx(ey, abs=0.6)
    # the whole sprite stays inside the frame at every angle
    assert (imgs.flatten(1).sum(1) > 0.9 * imgs[0].sum()).all()


def test_orientation_zero_and_two_pi_are_the_same_picture():
    classes = DS.sample_classes(200, torch.Generator().manual_seed(9))
    first, last = classes.clone(), classes.clone()
    first[:, 3], last[:, 3] = 0, 39
    assert torch.equal(DS.images(first), DS.images(last))
    middle = first.clone()
    middle[:, 3] = 20
    assert not torch.equal(DS.images(first), DS.images(middle))


def test_square_rotated_by_45_degrees():
    # orientation 5 is 46.2°. The continuous area stays 400 px²; a pixel is lit when its centre
    # is inside, so the count stays within a few percent of it (the published file, drawn by a
    # renderer that drops partly covered edge pixels, has ≈ 365; dsprites.md: "only up to
    # pixelation").
    areas = [float(render1(0, 5, orientation=5, pos_x=x, pos_y=y).sum())
             for x, y in [(0, 0), (5, 9), (16, 16), (30, 2)]]
    assert all(360 <= a <= 412 for a in areas), areas
    width, height = extents(render1(0, 5, orientation=5, pos_x=16, pos_y=16))
    diagonal = 20 * (math.cos(ORIENTATIONS[5]) + math.sin(ORIENTATIONS[5]))  # 28.3 px
    assert width == pytest.approx(diagonal, abs=1.5) and height == pytest.approx(diagonal, abs=1.5)


# -- vectorised rendering --------------------------------------------------------------------
def test_mixed_batch_equals_images_rendered_one_by_one():
    classes = DS.sample_classes(300, torch.Generator().manual_seed(11))  # > one CPU chunk
    assert set(classes[:, 1].tolist()) == {0, 1, 2}
    batch = DS.images(classes)
    single = torch.cat([DS.images(c.unsqueeze(0)) for c in classes])
    assert torch.equal(batch, single)
    # single-shape batches take another code path: same pixels
    for shape in range(3):
        rows = classes[:, 1] == shape
        assert torch.equal(DS.images(classes[rows]), batch[rows])
    assert DS.images(classes[:0]).shape == (0, 1, 64, 64)


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def test_rendering_has_no_per_image_loop():
    # the number of tensor operations must not grow with the batch
    counts = []
    for n in (6, 96):
        classes = DS.sample_classes(n, torch.Generator().manual_seed(0))
        classes[:3, 1] = torch.tensor([0, 1, 2])
        with _CountOps() as mode:
            DS.images(classes)
        counts.append(mode.count)
    assert abs(counts[0] - counts[1]) <= 3 and counts[1] < 200, counts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rendering_matches_cpu():
    classes = DS.sample_classes(2000, torch.Generator().manual_seed(0))
    on_gpu = DS.images(classes.cuda())
    assert on_gpu.device.type == "cuda"
    # the same pixels: the tables are made in float64 on the CPU, then cast and moved
    # (tests/test_devices.py renders a seventh of the grid on both)
    assert torch.equal(on_gpu.cpu(), DS.images(classes))


# -- the original npz layout -------------------------------------------------------------------
@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    index = torch.randperm(len(DS), generator=torch.Generator().manual_seed(21))[:300]
    classes = DS.index_to_classes(index)
    path = export_npz(tmp_path_factory.mktemp("npz") / "subset.npz", classes=classes)
    return path, classes


def test_export_and_read_back_a_subset(subset):
    path, classes = subset
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) >= {"imgs", "latents_classes", "latents_values"}
        assert npz["imgs"].dtype == np.uint8 and npz["imgs"].shape == (len(classes), 64, 64)
        assert np.array_equal(npz["latents_classes"], classes.numpy())
        values = npz["latents_values"]
    table = dsp.factor_values_table()
    for k in range(6):
        assert np.allclose(values[:, k], table[k].numpy()[classes[:, k].numpy()])
    from_file = DSprites(path, allow_subset=True)
    assert not from_file.procedural
    assert torch.equal(from_file.images(classes), DS.images(classes))
    assert torch.equal(from_file.images(classes.flip(0)), DS.images(classes.flip(0)))
    index = int(DS.classes_to_index(classes[7:8]))
    assert torch.equal(from_file[index][0], DS[index][0])
    others = DS.index_to_classes(torch.arange(len(DS))[~torch.isin(torch.arange(len(DS)),
                                                               DS.classes_to_index(classes))][:1])
    with pytest.raises(KeyError, match="not in the subset"):
        from_file.images(others)
    with pytest.raises(ValueError, match=r"expected shape \(737280, 64, 64\)"):
        DSprites(path)  # a subset needs allow_subset=True


def _arrays(n=8):
    classes = DS.sample_classes(n, torch.Generator().manual_seed(2))
    return {
        "imgs": DS.images(classes, dtype=torch.uint8)[:, 0].numpy(),
        "latents_classes": classes.numpy(),
        "latents_values": DS.factor_values(classes).numpy(),
    }


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_missing_key(tmp_path):
    arrays = _arrays()
    del arrays["latents_classes"]
    with pytest.raises(ValueError, match="missing.*latents_classes.*expected"):
        DSprites(_write(tmp_path / "a.npz", **arrays), allow_subset=True)


@pytest.mark.parametrize("key, bad, expected", [
    ("imgs", lambda a: a[:, :32, :32], r"'imgs'.*expected shape \(8, 64, 64\)"),
    ("latents_classes", lambda a: a[:, :5], r"'latents_classes'.*expected shape \(8, 6\)"),
    ("imgs", lambda a: a.astype(np.float32), "'imgs'.*dtype float32.*expected.*uint8"),
    ("latents_classes", lambda a: a.astype(np.int32), "'latents_classes'.*int32.*expected.*int64"),
    ("latents_values", lambda a: a.astype(np.float32), "'latents_values'.*expected.*float64"),
    ("imgs", lambda a: a * 255, "0/1"),
    ("latents_classes", lambda a: a + np.array([0, 0, 0, 0, 32, 0]), "out of range: expected 0 <= class < size"),
    ("latents_classes", lambda a: a - 1, "out of range"),
])
def test_npz_wrong_shape_dtype_or_values(tmp_path, key, bad, expected):
    arrays = _arrays()
    arrays[key] = bad(arrays[key])
    with pytest.raises(ValueError, match=expected):
        DSprites(_write(tmp_path / "bad.npz", **arrays), allow_subset=True)


def test_npz_full_grid_shape_is_required_without_allow_subset(tmp_path):
    with pytest.raises(ValueError, match=r"'imgs'.*expected shape \(737280, 64, 64\)"):
        DSprites(_write(tmp_path / "small.npz", **_arrays()))


def test_truncated_npz(tmp_path, subset):
    data = subset[0].read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        DSprites(path, allow_subset=True)


@pytest.mark.parametrize("content", [b"this is not an npz file\n" * 10, b"", b"PK\x03\x04 broken"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "notes.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="could not be read as an npz.*expected a zip of .npy arrays"):
        DSprites(path, allow_subset=True)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="DSprites()"):
        DSprites(tmp_path / "nowhere.npz")


class _Marker:
    """Unpickling this object creates a file: the loader must never do it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_loader_never_unpickles(tmp_path):
    marker = tmp_path / "unpickled.txt"
    arrays = _arrays()
    metadata = np.empty(1, dtype=object)
    metadata[0] = _Marker(marker)
    path = _write(tmp_path / "pickled_metadata.npz", metadata=metadata, **arrays)
    with zipfile.ZipFile(path) as zf:
        assert "metadata.npy" in zf.namelist()
    ds = DSprites(path, allow_subset=True)
    assert not marker.exists()
    classes = torch.from_numpy(arrays["latents_classes"])
    assert torch.equal(ds.images(classes), DS.images(classes))
    # an object array in place of one of the three arrays is refused, not unpickled
    arrays["latents_values"] = np.array([_Marker(marker)] * 8, dtype=object)
    with pytest.raises(ValueError, match="'latents_values' holds pickled.*expected a plain float64"):
        DSprites(_write(tmp_path / "pickled_values.npz", **arrays), allow_subset=True)
    assert not marker.exists()


def test_single_npy_array_is_not_an_npz(tmp_path):
    path = tmp_path / "imgs.npz"
    with open(path, "wb") as fh:
        np.save(fh, _arrays()["imgs"])
    with pytest.raises(ValueError, match="single array; expected an npz"):
        DSprites(path, allow_subset=True)


@pytest.mark.slow
def test_export_the_whole_grid_and_read_it_back(tmp_path):
    t0 = time.perf_counter()
    path = export_npz(tmp_path / "dsprites_procedural.npz")
    seconds = time.perf_counter() - t0
    print(f"\nwhole grid: export {seconds:.1f} s, {path.stat().st_size / 2**20:.1f} MiB")
    assert not list(tmp_path.glob("*.tmp*"))
    from_file = DSprites(path)  # the full-size, C-order checks apply
    index = torch.randint(len(DS), (5000,), generator=torch.Generator().manual_seed(0))
    classes = DS.index_to_classes(index)
    assert torch.equal(from_file.images(classes), DS.images(classes))
    with np.load(path, allow_pickle=False) as npz:
        assert np.array_equal(npz["latents_classes"], DS.index_to_classes(torch.arange(len(DS))).numpy())
        imgs = npz["imgs"]
    for start in range(0, len(DS), 65536):  # every image, in chunks
        classes = DS.index_to_classes(torch.arange(start, min(len(DS), start + 65536)))
        assert np.array_equal(imgs[start:start + len(classes)], DS.images(classes, dtype=torch.uint8)[:, 0].numpy())


def test_render_benchmark_prints_images_per_second(capsys):
    from course_lib.cli import bench

    assert bench.main(["render", "--batch-sizes", "16", "--seconds", "0.02", "--repeats", "1", "--cpu-only"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "batch" in line and "images/s" in line)
    assert float(line.split(":")[1].split("images/s")[0].replace(",", "")) > 0
    with pytest.raises(SystemExit):
        bench.main(["render", "--batch-sizes", "0"])


def test_every_output_dtype_gets_the_same_pixels():
    classes = DS.sample_classes(600, torch.Generator().manual_seed(11))
    ref = DS.images(classes)
    for dtype in (torch.float16, torch.bfloat16, torch.float64, torch.uint8):
        img = DS.images(classes, dtype=dtype)
        assert img.dtype == dtype
        assert torch.equal(img.float(), ref), dtype


def test_more_bad_indices_are_explained():
    with pytest.raises(TypeError, match="integer"):
        DS[1.5]
    with pytest.raises(TypeError, match="integer"):
        DS[True]
    assert torch.equal(DS[torch.tensor(5)][0], DS[5][0])  # a 0-d integer tensor is an index
    with pytest.raises(TypeError, match="N×6 integer"):
        DS.images(None)
    with pytest.raises(TypeError, match="integers"):
        DS.images(torch.zeros(2, 6, dtype=torch.complex64))
    with pytest.raises(TypeError, match="integers"):
        DS.index_to_classes(torch.tensor([True, False]))


def test_corrupt_compressed_npz_is_explained(tmp_path):
    import zipfile

    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, **_arrays(64))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("imgs.npy")
    data = bytearray(path.read_bytes())
    name_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    data[start:start + 8] = bytes(b ^ 0xFF for b in data[start:start + 8])  # the deflate stream's first bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="truncated or corrupt.*Download it again"):
        DSprites(path, allow_subset=True)


def _shape_margin(shape, classes):
    """The geometry written in the module's docstring, in float64, for one image (64×64): a
    signed margin per pixel centre, ≤ 0 inside the shape. Centre (16 + 32·posX, 16 + 32·posY),
    rotation counter-clockwise on the screen, square of side 20·s, ellipse of semi-axes 13·s
    and 7·s, heart (x² + y² − 1)³ ≤ x²y³ on its box x ∈ [−1.139, 1.139], y ∈ [−1, 1.236]
    stretched to 20·s × 17·s about the box's centre."""
    _, _, k_scale, k_theta, k_x, k_y = classes
    s = 0.5 + 0.1 * k_scale
    theta = 2 * math.pi * k_theta / 39
    cx, cy = 16 + 32 * k_x / 31, 16 + 32 * k_y / 31
    rows, cols = np.mgrid[0:64, 0:64].astype(np.float64)
    dx, dy_up = cols + 0.5 - cx, -(rows + 0.5 - cy)
    u = (math.cos(theta) * dx + math.sin(theta) * dy_up) / s
    v = (math.cos(theta) * dy_up - math.sin(theta) * dx) / s
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) - 10.0
    if shape == 1:
        return (u / 13) ** 2 + (v / 7) ** 2 - 1.0
    x = u * (2 * 1.139 / 20)
    y = v * (2.236 / 17) + 0.5 * (1.236 - 1.0)
    return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3


def test_every_pixel_follows_the_documented_geometry():
    """A brute-force float64 check of every pixel of 36 images (each shape at several scales,
    orientations and positions): a pixel is on exactly when its centre lies inside the shape,
    except where the centre sits within 1e-4 of the boundary (float32 against float64)."""
    rng = np.random.default_rng(0)
    checked = 0
    for shape in range(3):
        for _ in range(12):
            classes = [0, shape, int(rng.integers(6)), int(rng.integers(40)), int(rng.integers(32)),
                       int(rng.integers(32))]
            image = dsp.render(torch.tensor([classes]))[0, 0].numpy() > 0.5
            margin = _shape_margin(shape, classes)
            expected = margin <= 0
            differ = image != expected
            assert not differ[np.abs(margin) > 1e-4].any(), (classes, int(differ.sum()))
            checked += int(expected.sum())
    assert checked > 36 * 50   # the sprites were on the canvas
