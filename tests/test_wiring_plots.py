"""The numbers the GPT chapter's figures draw (plots/reasoning.py), read back from the drawn
artists: the band's spread over seeds, the frontier where enough seeds reached it, and pi*
normalised over the correct answers in the answers figure."""
import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pytest

import plots.reasoning
from reasoning.arithmetic import SumTask

TASK = SumTask()


@pytest.fixture
def drawn(monkeypatch):
    """The figures a plots.reasoning function would save, kept open to be read, their layout
    skipped (laying out the text is most of a figure's time, and no number here depends on it)."""
    figures = []
    monkeypatch.setattr(matplotlib.figure.Figure, "tight_layout", lambda self, **kwargs: None)
    monkeypatch.setattr(plots.reasoning, "save_figure",
                        lambda fig, path, rect=None: figures.append(fig) or path)
    yield figures
    for fig in figures:
        plt.close(fig)


def band(ax) -> dict:
    """x -> (lowest, highest) y of the shaded band(s) in ax."""
    vertices = np.concatenate([path.vertices for c in ax.collections for path in c.get_paths()])
    return {x: (vertices[vertices[:, 0] == x, 1].min(), vertices[vertices[:, 0] == x, 1].max())
            for x in np.unique(vertices[:, 0])}


def test_the_training_figure_draws_the_mean_and_the_population_spread_over_seeds(drawn):
    """Three seeds' held-out TV 0.2, 0.4, 0.9 at the last evaluation: the line is their mean 0.5,
    the band +- their population std (ddof = 0, 0.294), not the sample std (0.361) nor the
    variance. The frontier's mean and band are over the seeds that reached each level, and it is
    drawn where at least half of them did (docs/gpt.md: "at least three of five"): at 0.2 all three
    (4, 6, 8), at 0.4 two of three (3 and 5: 4 +- 1), at 0.6 one of three (not drawn)."""
    def history(seed_tv):
        evals = [{"iteration": i, "tv_to_target": tv, "tv_shape": 0.1, "exact_accuracy": 0.5,
                  "effective_correct": 2.0} for i, tv in [(0, 0.7), (10, seed_tv)]]
        return {"lad": {"iteration": [0, 1], "reward": [0.1, 0.2], "evals": evals}}

    histories = [history(tv) for tv in (0.2, 0.4, 0.9)]
    nan = np.nan
    frontiers = {"lad": [[4.0, 3.0, 2.0], [6.0, nan, nan], [8.0, 5.0, nan]]}
    plots.reasoning.draw_training(histories, [0.2, 0.4, 0.6], frontiers, "unused.png")
    axes = drawn[0].axes
    tv_axis = next(ax for ax in axes if ax.get_title() == "held-out distance to the target pi*")
    (line,) = tv_axis.get_lines()
    assert line.get_ydata() == pytest.approx([0.7, 0.5])
    std = np.std([0.2, 0.4, 0.9])
    assert band(tv_axis)[10] == pytest.approx((0.5 - std, 0.5 + std))

    frontier_axis = next(ax for ax in axes if "frontier" in ax.get_title())
    (line,) = frontier_axis.get_lines()
    y = np.asarray(line.get_ydata(), dtype=float)
    assert y[:2] == pytest.approx([6.0, 4.0]) and np.isnan(y[2])
    spread = band(frontier_axis)
    assert spread[0.2] == pytest.approx((6.0 - np.std([4, 6, 8]), 6.0 + np.std([4, 6, 8])))
    assert spread[0.4] == pytest.approx((3.0, 5.0))
    assert 0.6 not in spread


def test_the_answers_figure_draws_pi_star_and_the_model_normalised_over_the_correct_answers(drawn):
    """Prompt 12's eleven correct answers: pi* holds 0.8 of its mass on them and the model 0.5.
    Each panel compares p(y | correct): pi*'s correct part divided by 0.8 (grey), the model's by
    0.5. pi* left unnormalised (or divided by its whole sum, 1) would draw grey bars 0.8 times too
    low, the SFT shape no longer the grey outline."""
    gen = np.random.default_rng(0)
    p = 0.5 * gen.dirichlet(np.ones(11))
    pi_star = np.append(0.8 * gen.dirichlet(np.ones(11)), 0.2)
    plots.reasoning.draw_answers({"lad": [p]}, [pi_star], {"lad": [0.3]}, [12], TASK, 0,
                                 "unused.png")
    (ax,) = drawn[0].axes
    heights = np.array([patch.get_height() for patch in ax.patches])
    assert len(heights) == 22
    assert heights[:11] == pytest.approx(pi_star[:-1] / 0.8)  # the grey bars: pi*
    assert heights[11:] == pytest.approx(p / 0.5)
    assert "P(correct) 0.50" in ax.get_title() and "TV to pi* 0.30" in ax.get_title()
    assert "'12=' 0.800" in drawn[0]._suptitle.get_text()  # pi*(correct)
