"""Shared axis helpers: tick labels on log axes say different things at different ticks."""

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from scaling.plots import common


@pytest.mark.parametrize("low, high", [(3.3, 3.5), (3.38, 3.42), (2.0, 6.0), (1.9, 4.5)])
def test_log_loss_axis_labels_are_distinct(low, high):
  figure = common.new_figure(5.0, 4.0)
  ax = figure.add_subplot()
  ax.plot([1, 10], [low, high])
  common.log_loss_axis(ax)
  FigureCanvasAgg(figure).draw()
  shown = [(t.get_position()[1], t.get_text()) for minor in (False, True)
           for t in ax.get_yticklabels(minor=minor) if low <= t.get_position()[1] <= high]
  labels = [text for _, text in shown if text]
  assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
  for value, text in shown:  # each label reads as its tick's value, to its own precision
    assert float(text) == pytest.approx(value, abs=0.6 * 10 ** -len(text.partition(".")[2]))


def test_distinct_decimals_uses_the_fewest_digits():
  assert common.DistinctDecimals().format_ticks([2.0, 3.0, 4.0]) == ["2", "3", "4"]
  assert common.DistinctDecimals().format_ticks([3.3, 3.35, 3.4]) == ["3.30", "3.35", "3.40"]
