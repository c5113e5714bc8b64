"""HMM/Viterbi with a model's effective prior, median filter, hysteresis; segments cut at gaps."""

import numpy as np
import pytest

from epochstack.evaluation.smoothing import (
    effective_prior,
    hmm_parameters,
    hmm_smooth,
    hysteresis,
    median_smooth,
    remove_short_events,
    segment_ids,
    segment_slices,
    transition_counts,
    viterbi,
)


def sticky_hmm():
    sequences = [np.repeat([0, 1, 0, 2], 50)]
    return hmm_parameters(sequences, 3, pseudo_count=1.0)


def test_segments_start_at_new_recordings_and_at_gaps():
    recordings = np.array(["a", "a", "a", "a", "b", "b"])
    index = np.array([0, 1, 3, 4, 0, 1])  # epoch 2 of `a` was excluded
    assert segment_ids(recordings, index).tolist() == [0, 0, 1, 1, 2, 2]
    assert segment_slices(segment_ids(recordings, index)) == [slice(0, 2), slice(2, 4), slice(4, 6)]


def test_transition_counts_and_parameters():
    counts = transition_counts([np.array([0, 0, 1, 1, 0]), np.array([2, 2])], 3)
    assert counts.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    transitions, priors = hmm_parameters(
        [np.array([0, 0, 1, 1, 0])], 3, pseudo_count=1.0, self_transition_pseudo_count=2.0
    )
    assert transitions.sum(axis=1) == pytest.approx(np.ones(3))
    assert transitions[0] == pytest.approx(np.array([1 + 1 + 2, 1 + 1, 0 + 1]) / 7)
    assert priors == pytest.approx(np.array([3 + 1, 2 + 1, 0 + 1]) / 8)


def test_viterbi_fixes_an_isolated_flip():
    transitions, priors = sticky_hmm()
    proba = np.full((30, 3), 0.05)
    proba[:, 0] = 0.9
    proba[15] = [0.3, 0.6, 0.1]  # one epoch flips to REM with modest confidence
    assert proba.argmax(axis=1)[15] == 1
    assert (hmm_smooth(proba, transitions, priors, priors) == 0).all()


def test_viterbi_keeps_a_sustained_change():
    transitions, priors = sticky_hmm()
    proba = np.full((40, 3), 0.05)
    proba[:, 0] = 0.9
    proba[20:] = [0.05, 0.05, 0.9]
    path = hmm_smooth(proba, transitions, priors, priors)
    assert (path[:20] == 0).all() and (path[20:] == 2).all()


def test_hmm_divides_by_the_models_effective_prior_not_the_label_frequencies():
    """A class-balanced model's posteriors carry a flat prior: dividing them by the label
    frequencies (90 % / 10 %) again inflates the rare class everywhere; its mean output does not."""
    truth = np.repeat([0, 1, 0, 1, 0], [40, 10, 40, 10, 40])
    proba = np.where(truth[:, None] == np.arange(2), 0.6, 0.4)  # balanced model, modest confidence
    transitions, label_frequencies = hmm_parameters([truth], 2, pseudo_count=1.0)
    assert label_frequencies[0] > 0.7
    prior = effective_prior(proba)
    assert prior == pytest.approx(
        [(120 * 0.6 + 20 * 0.4) / 140, (120 * 0.4 + 20 * 0.6) / 140]
    )  # mean output
    assert (hmm_smooth(proba, transitions, label_frequencies, prior) == truth).all()
    assert (hmm_smooth(proba, transitions, label_frequencies, label_frequencies) == 1).mean() > 0.9


def test_viterbi_matches_brute_force():
    rng = np.random.default_rng(0)
    log_e, log_t, log_i = (
        np.log(rng.dirichlet(np.ones(2), 6)),
        np.log(rng.dirichlet(np.ones(2), 2)),
        np.log([0.5, 0.5]),
    )
    paths = np.array(np.meshgrid(*[[0, 1]] * 6)).reshape(6, -1).T
    scores = [
        log_i[p[0]]
        + log_e[0, p[0]]
        + sum(log_t[p[t - 1], p[t]] + log_e[t, p[t]] for t in range(1, 6))
        for p in paths
    ]
    assert viterbi(log_e, log_t, log_i).tolist() == paths[int(np.argmax(scores))].tolist()


def test_median_filter_removes_a_single_epoch_blip():
    proba = np.tile([0.8, 0.1, 0.1], (9, 1))
    proba[4] = [0.1, 0.8, 0.1]
    assert (median_smooth(proba, window=3) == 0).all()


def hysteresis_loop(p, tau_on, tau_off):
    state, out = False, []
    for value in p:
        state = value >= tau_off if state else value >= tau_on
        out.append(state)
    return np.array(out)


def test_hysteresis_and_minimum_duration():
    p = np.array([0.1, 0.9, 0.8, 0.8, 0.5, 0.85, 0.9, 0.2])
    active = hysteresis(p, tau_on=0.86, tau_off=0.78)
    assert active.tolist() == [False, True, True, True, False, False, True, False]
    assert remove_short_events(active, 2).tolist() == [
        False,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="tau_off"):
        hysteresis(p, tau_on=0.5, tau_off=0.7)


def test_vectorised_hysteresis_equals_the_state_machine():
    rng = np.random.default_rng(1)
    for _ in range(100):
        p = rng.random(rng.integers(1, 60))
        tau_on = rng.uniform(0.3, 0.9)
        tau_off = tau_on - rng.uniform(0, 0.3)
        assert (
            hysteresis(p, tau_on, tau_off).tolist() == hysteresis_loop(p, tau_on, tau_off).tolist()
        )


def test_hysteresis_and_minimum_duration_restart_at_segment_cuts():
    p = np.array([0.9, 0.8, 0.8, 0.8, 0.8, 0.9])
    segments = np.array([0, 0, 0, 1, 1, 1])  # a gap between rows 2 and 3
    assert hysteresis(p, 0.85, 0.7).tolist() == [True] * 6
    # after the cut the state starts off again: 0.8 < tau_on does not switch it on
    assert hysteresis(p, 0.85, 0.7, segments).tolist() == [True, True, True, False, False, True]
    active = np.ones(6, dtype=bool)
    # two runs of 3 (not one of 6) once the cut ends the first
    assert remove_short_events(active, 4, segments).tolist() == [False] * 6
    assert remove_short_events(active, 3, segments).tolist() == [True] * 6
