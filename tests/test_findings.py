"""Intervals and verdicts of dsm_utils.findings on constructed inputs."""
import pytest

from dsm_utils import findings as F


def test_clear_gain_is_reproduced():
    f = F.finding("GRPO > SFT", [0.45, 0.47, 0.44], [0.30, 0.31, 0.29], 500, paired=True)
    assert f.status == "reproduced"
    assert f.ci[0] > 0 and f.delta == pytest.approx(0.1533, abs=1e-4)


def test_small_gain_on_few_items_is_within_noise():
    f = F.finding("GRPO > SFT", [0.31, 0.30, 0.33], [0.29, 0.30, 0.30], 100, paired=True)
    assert f.status == "within noise"
    assert f.ci[0] < 0 < f.ci[1]


def test_clear_loss_is_not_reproduced():
    assert F.finding("a > b", [0.1, 0.12, 0.11], [0.4, 0.41, 0.39], 500).status == "not reproduced"


def test_binomial_error_shrinks_with_items_and_seed_spread_counts():
    small = F.diff_interval([0.5] * 3, [0.4] * 3, 50)
    big = F.diff_interval([0.5] * 3, [0.4] * 3, 5000)
    assert small.seed_half == pytest.approx(0, abs=1e-12) and small.binom_half > big.binom_half
    spread = F.diff_interval([0.3, 0.5, 0.7], [0.4] * 3, 5000)
    assert spread.seed_half > 0.1 and spread.hi - spread.lo > big.hi - big.lo


def test_pass_at_k_collapse_is_not_reproduced():
    # "RL does not raise Pass@K": equal within ±5 points. A collapse of 20 points must not count as reproduced.
    f = F.finding("Pass@16 flat", [0.45, 0.44, 0.46], [0.65, 0.66, 0.64], 500, direction="equal", margin=0.05,
                  paired=True)
    assert f.status == "not reproduced"
    flat = F.finding("Pass@16 flat", [0.65, 0.66, 0.64], [0.65, 0.65, 0.65], 5000, direction="equal",
                     margin=0.05, paired=True)
    assert flat.status == "reproduced"


def test_margin_edge_is_not_a_float_edge():
    assert F.verdict(0.01, 0.030000000000000027, "equal", 0.03) == "reproduced"
    assert F.verdict(-0.03, 0.03, "equal", 0.03) == "reproduced"


def test_bits_per_byte_are_not_proportions():
    f = F.finding("DSM < CC in math bpb", [1.10, 1.12, 1.11], [1.30, 1.31, 1.29], None, direction="decrease",
                  proportion=False)
    assert f.status == "reproduced"
    with pytest.raises(ValueError, match="accuracies"):
        F.diff_interval([1.1], [1.3], 10)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="direction"):
        F.verdict(0, 1, "up")
    with pytest.raises(ValueError, match="margin"):
        F.verdict(0, 1, "equal")
    with pytest.raises(ValueError, match="pair"):
        F.diff_interval([0.1, 0.2], [0.1], 10, paired=True)
    with pytest.raises(ValueError, match=r"findings\[0\].status"):
        F.check_findings([{"claim": "x", "status": "yes", "delta": 0, "ci": [0, 1]}])


def test_figure7_shape_is_reproduced_and_a_pass_at_k_collapse_is_not():
    base = {"maj": [0.40], "pass": [0.84], "pass1": [0.25]}
    paper_shape = {"maj": [0.58, 0.60, 0.59], "pass": [0.83, 0.84, 0.82], "pass1": [0.55, 0.57, 0.56]}
    maj, pas, gain = F.maj_pass_findings(paper_shape, base, 500, 16)
    assert (maj.status, gain.status) == ("reproduced", "reproduced")
    assert pas.status != "not reproduced"  # ±5 points holds; 500 items may leave it "within noise"
    collapse = {"maj": [0.58, 0.60, 0.59], "pass": [0.62, 0.60, 0.61], "pass1": [0.55, 0.57, 0.56]}
    maj, pas, _ = F.maj_pass_findings(collapse, base, 500, 16)
    assert maj.status == "reproduced" and pas.status == "not reproduced"
    with pytest.raises(ValueError, match="pass1"):
        F.maj_pass_findings({"maj": [0.5], "pass": [0.8]}, base, 500, 16)
