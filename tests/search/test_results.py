"""Reading a study back (``nasface.search.results``): the picks among its trials."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from nasface.core.errors import NasfaceError
from nasface.search.results import largest_within_noise_of, within_noise_margin


# -- the largest trial the proxy cannot tell from the most accurate ---------------------------------
@hypothesis_settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 12), noise=st.floats(0, 5))
def test_largest_within_noise_is_the_largest_of_those_the_noise_cannot_separate(data, n, noise):
    accuracy = data.draw(st.lists(st.integers(700, 900).map(lambda v: v / 1000), min_size=n, max_size=n))
    flops = data.draw(st.lists(st.sampled_from([20e6, 150e6, 440e6, 900e6]), min_size=n, max_size=n))
    chosen = largest_within_noise_of(accuracy, flops, noise)
    margin = within_noise_margin(noise)
    assert margin == pytest.approx(1.96 * 2 ** 0.5 * noise / 100)
    assert accuracy[chosen] >= max(accuracy) - margin - 1e-12  # the proxy cannot tell it from the best
    assert all(flops[i] <= flops[chosen] for i in range(n) if accuracy[i] >= max(accuracy) - margin - 1e-12)
    # without noise it is a most accurate one; more noise never picks a smaller network
    assert accuracy[largest_within_noise_of(accuracy, flops, 0.0)] == max(accuracy)
    assert flops[largest_within_noise_of(accuracy, flops, noise + 1.0)] >= flops[chosen]
    # the order the trials come in changes nothing
    order = data.draw(st.permutations(range(n)))
    again = largest_within_noise_of([accuracy[i] for i in order], [flops[i] for i in order], noise)
    assert (accuracy[order[again]], flops[order[again]]) == (accuracy[chosen], flops[chosen])


@pytest.mark.parametrize("noise", [-0.5, float("nan")])
def test_a_seed_noise_that_is_no_number_of_points_is_refused(noise):
    with pytest.raises(NasfaceError, match="0 or more"):
        largest_within_noise_of([0.8, 0.9], [1e6, 2e6], noise)
