"""Smoke test of the MIG benchmark on a few images (the full run is `python -m course_lib bench mig`)."""


from course_lib.cli import bench_metrics


def test_bench_mig_runs_on_a_small_subset(capsys):
    lines = []
    report = bench_metrics.bench_mig_full(device="cpu", n=128, batch_size=64, out=lines.append)
    assert report["images"] == 128 and report["device"] == "cpu"
    assert report["total_s"] >= report["encode_s"] > 0 and report["peak_rss_mib"] > 0
    assert 0.0 <= report["mig"] <= 1.0
    assert any("images/s" in line for line in lines) and any("peak RSS" in line for line in lines)


def test_bench_main_parses_arguments(capsys):
    assert bench_metrics.main(["mig", "--device", "cpu", "--n", "64", "--batch-size", "64"]) == 0
    assert "MIG benchmark" in capsys.readouterr().out


def test_bench_encode_chunks_times_each_chunk_size(capsys):
    seconds = bench_metrics.bench_encode_chunks(device="cpu", n=96, sizes=(96, 32), repeats=1)
    assert set(seconds) == {96, 32} and all(t > 0 for t in seconds.values())
    out = capsys.readouterr().out
    assert "chunks of     96" in out and "chunks of     32" in out and "1.0× the fastest" in out
    assert bench_metrics.main(["mig", "--chunks", "--device", "cpu", "--n", "64"]) == 0
    assert "pre-rendered" in capsys.readouterr().out
