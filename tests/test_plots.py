"""Tests of the plotting helpers: what they draw, and their errors."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from plots import color_for, plot_curves, plot_distribution, save_figure


def test_distribution_draws_the_target_and_one_bar_per_outcome_per_method(tmp_path):
    fig, ax = plt.subplots()
    target = torch.tensor([0.2, 0.3, 0.5])
    plot_distribution(ax, target, {"lad": [0.2, 0.3, 0.5], "grpo": np.array([0.0, 0.0, 1.0])},
                      outcome_labels=["a", "b", "c"])
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert len(ax.patches) == 9  # 3 target bars + 3 + 3
    assert heights == sorted([0.2, 0.3, 0.5] * 2 + [0.0, 0.0, 1.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    path = save_figure(fig, tmp_path / "deep" / "folder" / "d.png")
    assert path.stat().st_size > 0


def test_distribution_lengths_must_agree():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="outcomes"):
        plot_distribution(ax, [0.5, 0.5], {"lad": [1.0, 0.0, 0.0]})
    plt.close(fig)


def test_curves_take_their_own_x_and_a_std_band():
    fig, ax = plt.subplots()
    plot_curves(ax, {"lad": ([0, 1, 2], [1.0, 2.0, 3.0]), "grpo": ([0.5, 0.7], [1.0, 1.0], [0.1, 0.2])})
    lines = ax.get_lines()
    assert [list(line.get_xdata()) for line in lines] == [[0, 1, 2], [0.5, 0.7]]
    assert lines[0].get_color() == color_for("lad") and lines[1].get_color() == color_for("grpo")
    assert len(ax.collections) == 1  # the band
    with pytest.raises(ValueError, match="curve"):
        plot_curves(ax, {"lad": ([0, 1],)})
    plt.close(fig)


def test_log_axis_survives_curves_with_nothing_to_show():
    fig, ax = plt.subplots()
    plot_curves(ax, {"lad": ([0, 1], [np.nan, np.nan])}, logy=True)
    assert ax.get_yscale() == "linear"
    plot_curves(ax, {"grpo": ([0, 1], [1.0, 10.0])}, logy=True)
    assert ax.get_yscale() == "log"
    plt.close(fig)
