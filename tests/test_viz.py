"""Tests of course_lib.viz: the arrays behind each figure are checked, not only that it draws."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_lib import viz
from course_lib.models import BetaVAE
from course_lib.train import History


class PixelDecoder(torch.nn.Module):
    """A stand-in model whose decoder writes code j into pixel (0, j): easy to check by hand."""

    num_latents = 4

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def encode(self, x):
        mu = x[:, 0, 0, : self.num_latents] * 2 - 1
        return mu, torch.zeros_like(mu)

    def decode(self, z):
        out = torch.full((z.shape[0], 1, 64, 64), -3.0)
        out[:, 0, 0, : self.num_latents] = z
        return out


def test_make_grid_places_each_image():
    images = torch.zeros(5, 1, 3, 4)
    for i in range(5):
        images[i] = i / 10
    grid = viz.make_grid(images, nrow=2, pad=1, pad_value=1.0)
    assert grid.shape == (3 * (3 + 1) + 1, 2 * (4 + 1) + 1)
    # image 3 sits in row 1, column 1
    assert np.allclose(grid[1 + 4: 1 + 4 + 3, 1 + 5: 1 + 5 + 4], 0.3)
    # the empty sixth slot keeps the padding value
    assert np.allclose(grid[9:12, 6:10], 1.0)


def test_make_grid_rgb_and_errors():
    grid = viz.make_grid(torch.rand(2, 3, 5, 5), nrow=2, pad=0)
    assert grid.shape == (5, 10, 3)
    with pytest.raises(ValueError, match="N×C×H×W"):
        viz.make_grid(torch.rand(2, 2, 5, 5))
    with pytest.raises(TypeError):
        viz.make_grid([1, 2, 3])


def test_traversal_images_set_one_latent_and_keep_the_rest():
    model = PixelDecoder()
    z0 = torch.tensor([0.3, -0.7, 1.1, 0.0])
    values = torch.tensor([-2.0, 0.0, 1.5])
    images = viz.traversal_images(model, z0, dims=[1, 3], values=values)
    assert images.shape == (2, 3, 1, 64, 64)
    for i, k in enumerate([1, 3]):
        for j, v in enumerate(values):
            expected = z0.clone()
            expected[k] = v
            assert torch.allclose(images[i, j, 0, 0, :4], torch.sigmoid(expected))
    assert torch.allclose(images[..., 1:, :], torch.sigmoid(torch.tensor(-3.0)))


def test_traversal_images_match_a_real_decoder():
    torch.manual_seed(0)
    model = BetaVAE(num_latents=3).eval()
    z0 = torch.randn(3)
    images = viz.traversal_images(model, z0)  # default values: [-2, 2] step 0.5
    assert images.shape == (3, 9, 1, 64, 64)
    z = z0.clone()
    z[2] = 1.5
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(z[None]))[0]
    assert torch.allclose(images[2, 7], expected, atol=1e-6)


def test_traversal_codes_are_the_grid_that_traversal_images_decode():
    z0 = torch.tensor([[0.3, -0.7, 1.1]])            # 1×D is accepted like [D]
    values = torch.tensor([-1.0, 0.5])
    codes = viz.traversal_codes(z0, dims=[2, 0], values=values)
    assert codes.shape == (2, 2, 3) and codes.dtype == torch.float32
    for i, k in enumerate([2, 0]):
        for j, v in enumerate(values):
            expected = z0[0].clone()
            expected[k] = v
            assert torch.equal(codes[i, j], expected)
    model = PixelDecoder()
    z4 = torch.tensor([0.3, -0.7, 1.1, 0.0])
    assert torch.allclose(viz.traversal_images(model, z4, values=values),
                          torch.sigmoid(model.decode(viz.traversal_codes(z4, values=values).flatten(0, 1)))
                          .reshape(4, 2, 1, 64, 64))
    with pytest.raises(ValueError, match="out of range"):
        viz.traversal_codes(z0, dims=[3])
    with pytest.raises(ValueError, match=r"shape \[D\]"):
        viz.traversal_codes(torch.zeros(2, 3))


def test_traversal_errors_speak_to_the_student():
    model = PixelDecoder()
    with pytest.raises(ValueError, match="4 latents"):
        viz.traversal_images(model, torch.zeros(4), dims=[4])
    with pytest.raises(ValueError, match="shape"):
        viz.traversal_images(model, torch.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        viz.traversal_grid(model, torch.zeros(4), labels=["a"])


def test_reconstruct_uses_the_posterior_mean():
    model = PixelDecoder()
    x = torch.rand(3, 1, 64, 64)
    recon = viz.reconstruct(model, x)
    assert torch.allclose(recon[:, 0, 0, :4], torch.sigmoid(x[:, 0, 0, :4] * 2 - 1))
    fig = viz.reconstruction_grid(model, x)
    assert isinstance(fig, Figure)
    shown = fig.axes[0].images[0].get_array()
    # originals over reconstructions: 2 rows of 3 images of 64 pixels, padding 2
    assert shown.shape == (2 + 2 * 66, 2 + 3 * 66)
    assert np.allclose(shown[2 + 66: 2 + 66 + 64, 2: 2 + 64], recon[0, 0].numpy())


def test_traversal_grid_draws_the_tiled_images():
    model = PixelDecoder()
    fig = viz.traversal_grid(model, torch.zeros(4), dims=[0, 2], values=[-1.0, 1.0], labels=["posX", "scale"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["posX", "scale"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1", "1"]
    arr = ax.images[0].get_array()
    # row 1 (latent 2), column 1 (value 1): pixel (0, 2) is sigmoid(1)
    assert arr[2 + 66, 2 + 66 + 2] == pytest.approx(float(torch.sigmoid(torch.tensor(1.0))), abs=1e-6)


def _history(d=3, n=5):
    h = History()
    for s in range(1, n + 1):
        h.append(10 * s, {"loss": torch.tensor(100.0 / s), "kl_per_latent": torch.arange(d) * s * 1.0})
    return h


def test_plot_history_and_kl_curves():
    h = _history()
    fig = viz.plot_history(h, ["loss"])
    x, y = fig.axes[0].lines[0].get_data()
    assert np.allclose(x, [10, 20, 30, 40, 50]) and np.allclose(y, 100.0 / np.arange(1, 6))
    fig = viz.plot_kl_per_latent(h)
    lines = {ln.get_label(): ln.get_ydata() for ln in fig.axes[0].lines}
    assert sorted(lines) == ["z0", "z1", "z2"]
    assert np.allclose(lines["z2"], 2 * np.arange(1, 6))
    with pytest.raises(KeyError, match="recon"):
        viz.plot_history(h, ["recon"])
    with pytest.raises(ValueError, match="vector"):
        viz.plot_history(h, ["kl_per_latent"])


def test_kl_bar_and_heatmap_show_the_values():
    fig = viz.kl_bar(torch.tensor([0.5, 2.0, 0.0]))
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert np.allclose(heights, [0.5, 2.0, 0.0])
    mi = np.arange(12.0).reshape(4, 3) / 10
    fig = viz.mi_heatmap(mi, ["a", "b", "c"])
    assert np.allclose(fig.axes[0].images[0].get_array(), mi)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [f"z{j}" for j in range(len(mi))]
    fig = viz.mi_heatmap(mi, ["a", "b", "c"], latent_name="c")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [f"c{j}" for j in range(len(mi))]
    fig = viz.mi_heatmap(mi, ["a", "b", "c"], latent_name=["cat1", "c1", "c2", "c3"], off=[2])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["cat1", "c1", "c2 (off)", "c3"]
    with pytest.raises(ValueError, match="one row name per latent"):
        viz.mi_heatmap(mi, ["a", "b", "c"], latent_name=["cat1", "c1"])
    with pytest.raises(ValueError, match="factor names"):
        viz.mi_heatmap(mi, ["a"])


def test_mi_heatmaps_draws_one_panel_per_model():
    a, b = np.arange(12.0).reshape(4, 3) / 10, np.ones((5, 3))
    fig = viz.mi_heatmaps({"model A": a, "model B": b}, ["x", "y", "z"])
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["model A", "model B"]
    assert np.allclose(panels[0].images[0].get_array(), a) and np.allclose(panels[1].images[0].get_array(), b)
    assert [t.get_text() for t in panels[1].get_xticklabels()] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="factor names"):
        viz.mi_heatmaps({"A": a}, ["x"])
    with pytest.raises(ValueError, match="empty"):
        viz.mi_heatmaps({})


def test_mi_heatmaps_shared_colour_scale():
    a, b = np.arange(12.0).reshape(4, 3) / 10, np.full((4, 3), 0.2)
    own = [ax.images[0].get_clim() for ax in viz.mi_heatmaps({"A": a, "B": b}, ["x", "y", "z"]).axes if ax.images]
    assert np.allclose(own, [(0, 1.1), (0, 0.2)])   # default: each panel its own scale
    fig = viz.mi_heatmaps({"A": a, "B": b}, ["x", "y", "z"], vmax=1.5)
    assert np.allclose([ax.images[0].get_clim() for ax in fig.axes if ax.images], [(0, 1.5), (0, 1.5)])
    with pytest.raises(ValueError, match="vmax"):
        viz.mi_heatmaps({"A": a}, ["x", "y", "z"], vmax=0)


def test_mi_heatmaps_mark_the_rows_of_switched_off_latents():
    import matplotlib.colors as mcolors

    mi = np.arange(12.0).reshape(4, 3) / 10
    ticks = viz.mi_heatmap(mi, ["a", "b", "c"], off=[1, 3]).axes[0].get_yticklabels()
    assert [t.get_text() for t in ticks] == ["z0", "z1 (off)", "z2", "z3 (off)"]
    grey = [mcolors.to_hex(t.get_color()) == mcolors.to_hex("0.55") for t in ticks]
    assert grey == [False, True, False, True]
    ticks = viz.mi_heatmap(mi, ["a", "b", "c"], off=np.flatnonzero(mi[:, 0] > 0.5)).axes[0].get_yticklabels()
    assert [t.get_text() for t in ticks] == ["z0", "z1", "z2 (off)", "z3 (off)"]   # an index array, as np gives
    ticks = viz.mi_heatmap(mi, ["a", "b", "c"], off={3}).axes[0].get_yticklabels()   # a set too
    assert [t.get_text() for t in ticks] == ["z0", "z1", "z2", "z3 (off)"]
    fig = viz.mi_heatmaps({"A": mi, "B": mi}, ["a", "b", "c"], off={"B": [0]})
    panels = [ax for ax in fig.axes if ax.images]
    assert [t.get_text() for t in panels[0].get_yticklabels()] == ["z0", "z1", "z2", "z3"]
    assert [t.get_text() for t in panels[1].get_yticklabels()] == ["z0 (off)", "z1", "z2", "z3"]
    with pytest.raises(ValueError, match="out of range"):
        viz.mi_heatmap(mi, ["a", "b", "c"], off=[4])
    with pytest.raises(ValueError, match="not in matrices"):
        viz.mi_heatmaps({"A": mi}, ["a", "b", "c"], off={"C": [0]})


def test_latent_scatter_positions():
    codes = torch.randn(50, 3)
    fig = viz.latent_scatter(codes, colour_by=torch.arange(50), dims=(2, 0))
    offsets = fig.axes[0].collections[0].get_offsets()
    assert np.allclose(offsets, codes[:, [2, 0]].numpy())
    with pytest.raises(ValueError, match="colour_by"):
        viz.latent_scatter(codes, colour_by=torch.arange(3))


def test_figures_show_in_jupyter_without_pyplot():
    from IPython.core.formatters import PNGFormatter

    fig = viz.kl_bar([1.0, 2.0])
    png = PNGFormatter()(fig)
    assert png[:4] == b"\x89PNG"


def test_save_figure_creates_the_folder(tmp_path, monkeypatch):
    fig = viz.show_images(torch.rand(2, 1, 8, 8))
    path = viz.save_figure(fig, "03_test", directory=tmp_path / "a" / "b")
    assert path == tmp_path / "a" / "b" / "03_test.png" and path.stat().st_size > 0
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path / "runs"))
    path = viz.save_figure(fig, "x.png")
    assert path == tmp_path / "runs" / "figures" / "x.png" and path.exists()
    with pytest.raises(ValueError, match="plain file name"):
        viz.save_figure(fig, "../escape.png")


def test_reconstructions_of_an_mse_autoencoder_are_its_clipped_output():
    from course_lib.models import Autoencoder

    torch.manual_seed(0)
    ae = Autoencoder(num_latents=3).eval()  # recon="mse": the decoder outputs the image
    x = (torch.rand(4, 1, 64, 64) < 0.1).float()
    with torch.no_grad():
        out = ae(x)
    assert out.min() < 0  # the untrained output leaves [0, 1], so clipping matters
    assert torch.equal(viz.reconstruct(ae, x), out.clamp(0, 1))
    z0 = ae.encode(x)[0][0].detach()
    images = viz.traversal_images(ae, z0, dims=[1], values=[0.5])
    z = z0.clone()
    z[1] = 0.5
    with torch.no_grad():
        assert torch.allclose(images[0, 0], ae.decode(z[None]).clamp(0, 1)[0])


def test_a_figure_shown_as_text_is_caught_and_viz_figures_render():
    from matplotlib.figure import Figure

    from tests.nbval_figures import figures_shown_as_text

    bare = {"data": {"text/plain": "<Figure size 900x300 with 2 Axes>"}}
    with_png = {"data": {"text/plain": "<Figure size 900x300 with 2 Axes>", "image/png": "iVBOR"}}
    other = {"data": {"text/plain": "MIG: 0.3"}}
    assert figures_shown_as_text([other, bare, with_png]) == ["<Figure size 900x300 with 2 Axes>"]
    assert figures_shown_as_text([{"data": {"text/plain": ["<matplotlib.figure.Figure size 640x480 with 0 Axes>"]}}])
    assert not hasattr(Figure(), "_repr_png_")  # why a bare Figure shows as text
    fig = viz.figure((2, 1))
    fig.subplots().plot([0, 1], [1, 0])
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_show_images_wraps_a_long_title_inside_the_figure():
    """A title longer than the image grid is wide is wrapped, not cut at the figure's edges."""
    title = ("shipped InfoGAN: code 2 (left→right, −2…2) changes the width of the digit; one category per row "
             "and the noise fixed")
    fig = viz.show_images(torch.rand(14, 1, 32, 32), nrow=7, title=title)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    text = fig.axes[0].title
    box = text.get_window_extent(renderer=canvas.get_renderer())
    width_px = fig.get_figwidth() * fig.dpi
    assert "\n" in text.get_text()
    assert text.get_text().replace("\n", " ") == title
    assert box.x0 >= 0 and box.x1 <= width_px, (box.x0, box.x1, width_px)
    short = viz.show_images(torch.rand(7, 1, 32, 32), nrow=7, title="code 1")
    assert short.axes[0].title.get_text() == "code 1"


def test_traversal_grid_keeps_a_long_title_inside_the_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    model = BetaVAE(num_latents=4)
    cases = [("absolute penalty, seed 2: active latents by switch-on step, two of the ten latents",
              ["z0 posX (2,000)", "z1 posY (3,500)"]),
             # long row labels take room from the images: the title must still fit (it was cut once)
             ("absolute penalty: active latents by switch-on step",
              ["z5 posY?, on at 2,500", "z0 scale?, on at 34,500"])]
    for title, labels in cases:
        fig = viz.traversal_grid(model, torch.zeros(4), dims=[0, 1], labels=labels, title=title, scale=0.8)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        box = fig.axes[0].title.get_window_extent(renderer=canvas.get_renderer())
        assert fig.axes[0].title.get_text().replace("\n", " ") == title
        assert box.x0 >= 0 and box.x1 <= fig.get_figwidth() * fig.dpi, (title, box.x0, box.x1)


def test_plot_history_keeps_a_long_title_inside_the_figure():
    """One panel is 3.6 inches wide: a longer title is wrapped onto more lines, not cut."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    title = "through a sigmoid: training loss (squared pixels/image)"
    fig = viz.plot_history(_history(), ["loss"], title=title)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    text = fig._suptitle
    box = text.get_window_extent(renderer=canvas.get_renderer())
    assert "\n" in text.get_text() and text.get_text().replace("\n", " ") == title
    assert box.x0 >= 0 and box.x1 <= fig.get_figwidth() * fig.dpi, (box.x0, box.x1)


def _square_row(xs, ys, sizes, h=32):
    """One traversal row of V images, a filled square of side ``sizes[i]`` with its top-left
    corner at (xs[i], ys[i])."""
    row = torch.zeros(len(xs), 1, h, h)
    for i, (x, y, s) in enumerate(zip(xs, ys, sizes)):
        row[i, 0, y:y + s, x:x + s] = 1.0
    return row


def test_traversal_row_changes_measures_moves_sizes_and_fades():
    moving = _square_row([2, 6, 10, 14], [5, 5, 5, 5], [4, 4, 4, 4])          # right by 12 px
    growing = _square_row([10, 10, 10, 10], [10, 10, 10, 10], [2, 4, 6, 8])    # area 4 → 64
    there_and_back = _square_row([2, 12, 2, 2], [3, 3, 3, 3], [4, 4, 4, 4])
    fading = _square_row([5, 5, 5, 5], [5, 5, 5, 5], [4, 4, 4, 0])
    still = _square_row([5] * 4, [7] * 4, [3] * 4)
    out = viz.traversal_row_changes(torch.stack([moving, growing, there_and_back, fading, still]))
    assert out[0]["dx"] == pytest.approx(12) and out[0]["dy"] == pytest.approx(0)
    assert out[0]["x_range"] == pytest.approx(12)
    assert out[0]["area_ratio"] == pytest.approx(1) and out[0]["changed"] == pytest.approx(2.0)  # 32 px / area 16
    # the centre of a square at x..x+s is x + s/2: 10 + 1 → 10 + 4, so it moves 3 px right and down
    assert out[1]["dx"] == pytest.approx(3) and out[1]["dy"] == pytest.approx(3)
    assert out[1]["area_ratio"] == pytest.approx(16) and out[1]["area_range"] == pytest.approx(16)
    assert out[2]["dx"] == pytest.approx(0) and out[2]["x_range"] == pytest.approx(10)
    assert out[2]["centres"][:, 0].tolist() == pytest.approx([4, 14, 4, 4])   # x of each image's centre
    assert out[1]["areas"].tolist() == pytest.approx([4, 16, 36, 64])
    assert out[3]["faded"] and not out[0]["faded"]
    words = [viz.describe_row_change(c) for c in out]
    assert words == ["moves along x", "moves along a diagonal, grows", "moves along x",
                     "fades out at the right end, changes nothing measurable", "changes nothing measurable"]
    assert viz.describe_row_change(out[1], move_px=5) == "grows"
    pulse = viz.traversal_row_changes(_square_row([10] * 4, [10] * 4, [2, 6, 2, 2])[None])[0]
    assert pulse["area_range"] == pytest.approx(9) and pulse["area_ratio"] == pytest.approx(1)
    assert viz.describe_row_change(pulse) == "changes size and back"
    # big → small → big, ending smaller than it started: still "and back", not "shrinks"
    dip = viz.traversal_row_changes(_square_row([16, 18, 19, 18, 17], [16, 18, 19, 18, 17], [8, 4, 2, 4, 6])[None])[0]
    assert dip["area_ratio"] == pytest.approx(36 / 64) and dip["x_range"] == pytest.approx(0)
    assert viz.describe_row_change(dip) == "changes size and back"
    # a shrinking row whose last image is a little larger than the one before: "shrinks"
    settling = viz.traversal_row_changes(_square_row([15, 16, 17, 18, 18], [15, 16, 17, 18, 18],
                                                     [10, 8, 6, 4, 5])[None])[0]
    assert viz.describe_row_change(settling) == "shrinks"
    no_areas = {k: v for k, v in dip.items() if k != "areas"}   # an entry without the per-image areas
    assert viz.describe_row_change(no_areas) == "shrinks"
    with pytest.raises(ValueError, match="rows × V × 1 × H × W"):
        viz.traversal_row_changes(moving)


def _ellipse_row(angles, a=9.0, b=3.0, centre=(16.0, 16.0), h=32):
    """One traversal row: a filled ellipse of semi-axes a, b turned by each of ``angles`` (degrees)."""
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(h) + 0.5, indexing="ij")
    row = torch.zeros(len(angles), 1, h, h)
    for i, angle in enumerate(angles):
        t = math.radians(angle)
        u = (xs - centre[0]) * math.cos(t) + (ys - centre[1]) * math.sin(t)
        v = -(xs - centre[0]) * math.sin(t) + (ys - centre[1]) * math.cos(t)
        row[i, 0] = ((u / a) ** 2 + (v / b) ** 2 <= 1).float()
    return row


def test_traversal_row_changes_measures_the_long_axis_and_elongation():
    turning = _ellipse_row([0, 30, 60, 90])                   # an ellipse turning by 90°
    still = _ellipse_row([45, 45, 45, 45])
    bar_to_square = _square_row([10, 10, 10, 10], [10, 10, 10, 10], [4, 4, 4, 4]).clone()
    bar_to_square[0] = 0
    bar_to_square[0, 0, 13:15, 6:18] = 1.0                    # a 12 × 2 bar, then 4 × 4 squares
    out = viz.traversal_row_changes(torch.stack([turning, still, bar_to_square]))
    assert out[0]["angles"][0] == pytest.approx(0, abs=2) and out[0]["angles"][-1] == pytest.approx(90, abs=2)
    assert out[0]["turn"] == pytest.approx(90, abs=2) and out[0]["elongation_ratio"] == pytest.approx(1, abs=0.1)
    assert out[0]["elongations"][0] == pytest.approx(3, rel=0.1)           # semi-axes 9 and 3
    assert out[1]["turn"] == pytest.approx(0, abs=1) and out[1]["angles"][0] == pytest.approx(45, abs=2)
    # a bar of 12 × 2 pixels: spreads √((12² − 1)/12) and √((2² − 1)/12); a 4 × 4 square: 1
    assert out[2]["elongation_ratio"] == pytest.approx(math.sqrt(143 / 3))
    assert out[2]["turn"] == 0.0                                           # a square has no long axis
    words = [viz.describe_row_change(c) for c in out]
    assert words[0] == "turns" and words[1] == "changes nothing measurable"
    assert "changes shape" in words[2].split(", ")
    assert viz.row_shows(words[0], "orientation") == (True, [])
    assert viz.row_shows(words[2], "shape")[0]
    # the same turn seen while the sprite also moves: both are named
    moving_turn = torch.stack([_ellipse_row([0], centre=(8 + 5 * i, 16))[0] for i in range(4)]).clone()
    moving_turn[-1] = _ellipse_row([90], centre=(23, 16))[0]
    assert viz.describe_row_change(viz.traversal_row_changes(moving_turn[None])[0]) == "moves along x, turns"


def test_row_measures_and_row_shows_read_describe_row_change():
    moving = _square_row([2, 6, 10, 14], [5, 5, 5, 5], [4, 4, 4, 4])
    fading = _square_row([5, 5, 5, 5], [5, 5, 5, 5], [4, 4, 0, 4])   # vanishes inside the row
    growing = _square_row([10, 10, 10, 10], [10, 10, 10, 10], [2, 4, 6, 8])
    out = viz.traversal_row_changes(torch.stack([moving, fading, growing]))
    assert viz.row_measures(out[0]) == "centre over the row: x 12.0 px, y  0.0 px; area ×1.00"
    assert viz.row_measures(out[1]).endswith("area —")
    assert viz.row_measures(out[2]).endswith("area ×16.00")
    words = viz.describe_row_change(out[2])                     # "moves along a diagonal, grows"
    assert viz.row_shows(words, "scale") == (True, ["moves along a diagonal"])
    assert viz.row_shows(words, "posX") == (False, ["moves along a diagonal", "grows"])
    assert viz.row_shows("moves along x, shrinks", ["posX", "scale"]) == (True, [])
    assert viz.row_shows("moves along x, shrinks, jumps (between 0.5 and 1: 9 px)", "posX") == \
        (True, ["shrinks", "jumps"])
    assert viz.row_shows("changes shape or orientation only", "shape") == (True, [])
    assert viz.row_shows("changes size and back", "scale") == (False, ["changes size and back"])
    with pytest.raises(ValueError, match="unknown factor 'colour'"):
        viz.row_shows("grows", "colour")


def test_rows_that_fade_out_at_an_end_are_described_by_their_visible_images():
    # a latent of size whose sprite vanishes at the left end: empty, then 2, 4, 6, 8 px squares
    from_nothing = _square_row([16, 15, 14, 13, 12], [16, 15, 14, 13, 12], [0, 2, 4, 6, 8])  # centred at 16
    both_ends = _square_row([3, 3, 8, 13, 3], [5] * 5, [0, 4, 4, 4, 0])         # moves right between
    middle = _square_row([5] * 5, [5] * 5, [4, 4, 0, 4, 4])                      # vanishes in the middle
    short = _square_row([5] * 5, [5] * 5, [0, 0, 0, 4, 4])                       # two visible images only
    out = viz.traversal_row_changes(torch.stack([from_nothing, both_ends, middle, short]))
    assert [c["faded"] for c in out] == [True] * 4
    assert [c["faded_end"] for c in out] == ["left", "both", None, None]
    # the visible part is measured on its own: areas 4 → 64 over images 1..4
    assert out[0]["visible"]["area_range"] == pytest.approx(16)
    assert out[0]["visible"]["areas"].tolist() == pytest.approx([4, 16, 36, 64])
    assert out[1]["visible"]["x_range"] == pytest.approx(10) and out[2]["visible"] is None
    words = [viz.describe_row_change(c) for c in out]
    assert words == ["fades out at the left end, grows", "fades out at both ends, moves along x",
                     "fades out", "fades out"]
    assert viz.row_shows(words[0], "scale") == (True, ["fades out at the left end"])
    assert viz.row_shows(words[1], "posX") == (True, ["fades out at both ends"])
    assert viz.row_shows(words[2], "scale") == (False, ["fades out"])
    assert viz.row_measures(out[0]) == "centre over the row: x  0.0 px, y  0.0 px; area ×16.00 where visible"
    assert viz.row_measures(out[2]).endswith("area —")


def test_an_empty_image_has_no_centre_and_is_left_out_of_the_ranges():
    from course_lib.viz import row_measures, traversal_row_changes

    row = torch.zeros(1, 5, 1, 64, 64)
    for v in (0, 1, 3, 4):
        row[0, v, 0, 40:48, 40:48] = 1.0  # a still square; image 2 is empty
    change = traversal_row_changes(row)[0]
    assert change["faded"] and change["x_range"] == 0.0 and change["y_range"] == 0.0
    assert torch.isnan(change["centres"][2]).all() and not torch.isnan(change["centres"][[0, 1, 3, 4]]).any()
    assert change["dx"] == 0.0 and change["dy"] == 0.0
    assert row_measures(change) == "centre over the row: x  0.0 px, y  0.0 px; area —"
    row[0, 4] = 0.0  # now the last image is empty too: no move from first to last can be read
    assert math.isnan(traversal_row_changes(row)[0]["dx"])
