"""dsm_utils.reward_models: rule-labelled data, ORM/PRM training and scoring, save/load, value model."""
from __future__ import annotations

import pytest
import torch

from dsm_utils import problems as P
from dsm_utils import reward_models as R


@pytest.fixture(scope="module")
def tok():
    from dsm_utils.tokenizer import default_tokenizer

    return default_tokenizer()


def _data(n=6, seed=4):
    probs = P.generate(n, seed=seed)
    wrong = ["I do not know.\nThe answer is \\boxed{%d}." % (int(p.answer) + 1) for p in probs]
    bad_first = ["1 + 1 = 3\n" + p.cot for p in probs]
    return probs, [p.cot for p in probs] + wrong + bad_first, probs * 3


def test_build_rm_dataset_labels_from_the_rule_checker():
    probs, comps, ps = _data(3)
    ds = R.build_rm_dataset(ps, comps, kind="process")
    assert [r["label"] for r in ds] == [1.0] * 3 + [0.0] * 3 + [1.0] * 3  # bad first line, right answer
    assert all(r["step_labels"] == [0.0] for r in ds[3:6])  # the boxed line of a wrong answer is a wrong step
    assert all(r["step_labels"][0] == 0.0 for r in ds[6:])
    assert ds[0]["step_ends"] == R.step_char_ends(comps[0])
    with pytest.raises(ValueError):
        R.build_rm_dataset(ps, comps, kind="both")


def test_outcome_and_process_rm_learn_the_labels(tok, tmp_path):
    probs, comps, ps = _data(8)
    _, held_comps, held_ps = _data(8, seed=5)  # other problems: accuracy is measured on items never trained on
    assert not {p.question for p in ps} & {p.question for p in held_ps}
    for kind, key in (("outcome", "outcome_acc"), ("process", "step_acc")):
        ds = R.build_rm_dataset(ps, comps, kind=kind)
        held = R.build_rm_dataset(held_ps, held_comps, kind=kind)
        rm = R.make_reward_model("llama-1m", tok, seed=0)
        untrained = R.rm_accuracy(rm, tok, held)[key]
        R.train_reward_model(rm, tok, ds, steps=60, lr=3e-3, batch_size=12, progress=False)
        acc = R.rm_accuracy(rm, tok, held)
        assert acc[key] >= 0.8 and acc[key] > untrained, (kind, untrained, acc)
    steps = R.score_steps(rm, tok, [r["prompt"] for r in ds[:2]], comps[:2])
    assert [len(s) for s in steps] == [len(r["step_labels"]) for r in ds[:2]]
    before = R.score_outcome(rm, tok, [ds[0]["prompt"]], [comps[0]])
    rm.save_pretrained(tmp_path / "rm")
    again = R.make_reward_model(tmp_path / "rm", tok)
    assert R.score_outcome(again, tok, [ds[0]["prompt"]], [comps[0]]) == pytest.approx(before, abs=1e-6)


def test_value_model_is_a_policy_copy_with_a_scalar_head(tok):
    from dsm_utils.models import count_parameters, load_model

    pol = load_model("llama-1m", tok)
    vm = R.make_value_model(pol)
    assert vm.backbone is not pol.model
    ids = torch.randint(10, 100, (2, 7))
    v = R.token_values(vm, ids, torch.ones_like(ids), 3)
    assert v.shape == (2, 3)
    assert abs(count_parameters(vm) - count_parameters(pol)) < 0.01 * count_parameters(pol)
