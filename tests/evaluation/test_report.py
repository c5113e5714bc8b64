"""The report's one-line warning when held-out accuracy falls far below the OOF estimate."""

from epochstack.evaluation.report import shift_sentence


def test_a_shift_between_files_is_said_in_one_line():
    # Issue 19's set A: every model 0.97-1.00 out-of-fold on TRAIN, 0.66 on a TEST file of
    # other sessions (293 test, 268 OOF cases).
    line = shift_sentence({"accuracy": 0.658}, {"accuracy": 0.985}, 293, 268)
    assert line.startswith("**Shift between training and test data")
    assert "0.658" in line and "0.985" in line and "dataset.uea.groups" in line
    assert "\n" not in line


def test_no_warning_within_noise_or_small_gaps():
    # EyesOpenShut-sized: 0.10 below OOF on 42 test cases is within twice the standard error.
    assert shift_sentence({"accuracy": 0.619}, {"accuracy": 0.714}, 42, 56) == ""
    # Many cases: a 0.03 gap is significant but small.
    assert shift_sentence({"accuracy": 0.90}, {"accuracy": 0.93}, 5000, 5000) == ""
    assert shift_sentence({"accuracy": 0.95}, {"accuracy": 0.90}, 100, 100) == ""  # test above
    assert shift_sentence({}, {"accuracy": 0.9}, 100, 100) == ""


def test_the_stack_sentence_says_which_rule_chose():
    from epochstack.evaluation.report import _stack_sentence

    models = ["quant", "minirocket"]
    robust = _stack_sentence({"selected": "cawpe", "stacked_models": models, "noise_z": 2.0})
    assert "HIVE-COTE 2" in robust and "lowest log loss" in robust
    old = _stack_sentence({"selected": "quant", "stacked_models": models, "left_out": []})
    assert "alone (no combination beat it" in old and "log loss" not in old
