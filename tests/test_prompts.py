"""Prompts: DeepSeek-Math's few-shot prompts exactly as the data file holds them, chat forms, stop strings."""
from __future__ import annotations

import json

import pytest

from dsm_utils import benchmarks as B
from dsm_utils import problems
from dsm_utils import prompts as P


@pytest.fixture(scope="module")
def prompt_data(data_root):
    return json.loads((data_root / P.PROMPTS_FILE).read_text(encoding="utf-8"))["prompts"]


def _expected(prompt_data, name: str, task_input: str) -> str:
    """What DeepSeek-Math's ``format_prompt(task_input, "")`` returns, built from the data file's own fields."""
    rec = prompt_data[name]
    few = rec["module_constants"]["few_shot_prompt"]
    return rec["template"].format(few_shot_prompt=few, task_input=task_input, task_output="").rstrip()


@pytest.mark.parametrize("bench", ["gsm8k", "math", "math500", "cmath", "gaokao_mathcloze", "ocw", "toy"])
def test_few_shot_cot_prompt_is_the_data_files(prompt_data, bench):
    it = B.load_benchmark(bench, limit=1)[0]
    name = P.FEW_SHOT_PROMPTS[bench]
    p = P.build_prompt(it, "few_shot_cot")
    assert p.text == _expected(prompt_data, name, it.question.strip())
    assert p.stop == prompt_data[name]["stop_words"]
    # every exemplar of the data file is in the prompt, in order, and nothing else precedes the question
    blocks = P.exemplar_blocks(name)
    pos = [p.text.index(b) for b in blocks]
    assert pos == sorted(pos) and pos[0] == 0


def test_multiple_choice_layout_follows_the_exemplars(prompt_data):
    it = B.load_benchmark("mmlu_stem", limit=1)[0]
    p = P.build_prompt(it, "few_shot_cot")
    opts = ", ".join(f"({L}) {c}" for L, c in zip("ABCD", it.choices))
    task = f"{it.question.strip()}\nWhat of the following is the right choice? Explain your answer.\n{opts}"
    assert p.text == _expected(prompt_data, "cot_mmlu_stem_4_shot", task)
    # the exemplars use the same layout for their own options
    assert "What of the following is the right choice? Explain your answer.\n(A) " in P.exemplar_blocks(
        "cot_mmlu_stem_4_shot")[0]
    q = B.load_benchmark("gaokao_mathqa", limit=1)[0]
    pq = P.build_prompt(q, "few_shot_cot").text
    assert pq.endswith("问题 6的解析:") and "\n从以下选项中选择:    (A)" in pq.split("问题 6.")[-1]
    s = B.load_benchmark("sat", limit=1)[0]
    assert P.build_prompt(s, "few_shot_cot").text.startswith(prompt_data["cot_math_sat_4_shot"]["module_constants"]
                                                             ["few_shot_prompt"])


@pytest.mark.parametrize("bench,name", [("gsm8k", "pal_gsm_8_shot"), ("math", "pal_math_4_shot")])
def test_base_model_pot_uses_the_pal_prompts(prompt_data, bench, name):
    it = B.load_benchmark(bench, limit=1)[0]
    p = P.build_prompt(it, "few_shot_pot")
    assert p.text == _expected(prompt_data, name, it.question.strip())
    assert p.stop == prompt_data[name]["stop_words"]
    assert not P.has_prompt("cmath", "few_shot_pot")
    with pytest.raises(ValueError, match="no few_shot_pot prompt for 'cmath'"):
        P.build_prompt(B.load_benchmark("cmath", limit=1)[0], "few_shot_pot")


def test_no_invented_exemplars_remain():
    # Every few-shot prompt name maps to a file of the data, and the module holds no exemplar text of its own.
    src = open(P.__file__, encoding="utf-8").read()
    for gone in ("ZH_EXEMPLARS", "FEW_SHOT:", "_make_mc", "rng.sample"):
        assert gone not in src
    for name in set(P.FEW_SHOT_PROMPTS.values()) | set(P.PAL_PROMPTS.values()):
        assert P.prompt_file(name).few_shot_prompt  # raises KeyError if the data file lacks it


@pytest.mark.parametrize("name", sorted(P._HEADS))
def test_exemplar_split_reassembles_the_file(prompt_data, name):
    raw = P._raw_blocks(name, None)
    assert "".join(raw) == prompt_data[name]["module_constants"]["few_shot_prompt"]
    n = P.n_exemplars(name)
    # the file name states the count; DeepSeek-Math's pal_math_4_shot holds one more exemplar than its name says
    assert n == P.prompt_file(name).nominal_shots + (1 if name == "pal_math_4_shot" else 0)
    assert P.few_shot_prefix(name, n) == prompt_data[name]["module_constants"]["few_shot_prompt"]


def test_shorter_exemplar_set_is_a_prefix_of_the_repositorys():
    full = P.prompt_file("cot_gsm_8_shot").few_shot_prompt
    two = P.few_shot_prefix("cot_gsm_8_shot", 2)
    assert full.startswith(two) and two.count("\nA: ") == 2 and two == two.strip()
    it = B.load_benchmark("toy", limit=1)[0]
    p = P.build_prompt(it, "few_shot_cot", n_shot={"cot_gsm_8_shot": 2})
    assert p.text == f"{two}\n\n\nQ: {it.question.strip()}\nA:"
    assert P.build_prompt(it, "few_shot_cot", n_shot={"pal_gsm_8_shot": 1}).text.count("Q: ") == 9  # not its file
    with pytest.raises(ValueError, match="between 1 and 8"):
        P.few_shot_prefix("cot_gsm_8_shot", 9)


def test_zero_shot_matches_chat_prompt_and_stops():
    it = B.load_benchmark("toy", limit=1)[0]
    p = P.build_prompt(it, "zero_shot_cot")
    assert p.text == problems.chat_prompt(it.question)
    assert p.text == f"User: {it.question}\n{P.COT_INSTRUCTION}\n\nAssistant:"
    t = P.build_prompt(it, "tool")
    assert P.TOOL_INSTRUCTION in t.text and t.stop[0] == P.OUTPUT_FENCE == "```output"
    assert "User:" in P.build_prompt(it, "pot").stop
    c = B.load_benchmark("cmath", limit=1)[0]
    assert P.build_prompt(c, "zero_shot_cot").text == problems.chat_prompt(c.question, P.COT_INSTRUCTION_ZH)


def test_stop_strings_cut_the_next_exemplar():
    from dsm_utils.generation import truncate_at_stop

    it = B.load_benchmark("toy", limit=1)[0]
    stop = P.build_prompt(it, "few_shot_cot").stop
    text, hit = truncate_at_stop(" 3 + 4 = 7. The answer is 7.\n\n\nQ: Ben has", stop)
    assert hit and text == " 3 + 4 = 7. The answer is 7.\n\n"


def test_bad_modes_and_missing_file(tmp_path):
    it = B.load_benchmark("toy", limit=1)[0]
    with pytest.raises(ValueError, match="valid modes"):
        P.build_prompt(it, "five_shot")
    mf = B.Item(question="q", answer=None, benchmark="minif2f", id="m")
    with pytest.raises(ValueError, match="minif2f"):
        P.build_prompt(mf, "zero_shot_cot")
    with pytest.raises(ValueError, match="no few_shot_cot prompt for 'mgsm_zh'"):
        P.build_prompt(B.load_benchmark("mgsm_zh", limit=1)[0], "few_shot_cot")
    with pytest.raises(FileNotFoundError, match="prompts/deepseek_math_prompts.json"):
        P.prompt_file("cot_gsm_8_shot", data_dir=tmp_path)


def _render_upstream(rec: dict) -> str:
    """An upstream-style ``few_shot_prompts/*.py`` file for a record (the layout of the repository's files)."""
    def lit(v: str) -> str:
        return '"""' + v.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '""".strip()'
    consts = "\n\n".join(f"{k} = {lit(v)}" if isinstance(v, str) else f"{k} = {v!r}"
                         for k, v in rec["module_constants"].items())
    fstring = rec["template"].replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return (f"from .few_shot_prompting import FewShotPrompting\n\n{consts}\n\n\n"
            f"class {rec['class']}(FewShotPrompting):\n    def __init__(self):\n        super().__init__()\n\n"
            f"    def format_prompt(self, task_input, task_output):\n"
            f"        prompt = f\"{fstring}\"\n        return prompt.rstrip()\n\n"
            f"    def stop_words(self):\n        return {rec['stop_words']!r}\n")


def test_prompts_json_text_is_the_shared_files_bytes(data_root):
    import hashlib

    raw = (data_root / P.PROMPTS_FILE).read_text(encoding="utf-8")
    assert P.prompts_json_text(json.loads(raw)) == raw
    readme = (data_root / "prompts" / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(raw.encode("utf-8")).hexdigest() in readme


def test_derive_prompts_json_round_trips(prompt_data):
    names = [n for n in prompt_data if n != "minif2f_isabelle"]
    sources = {f"{n}.py": _render_upstream(prompt_data[n]) for n in names}
    got = P.derive_prompts_json(sources)["prompts"]
    for n in names:
        for key in ("class", "template", "stop_words", "module_constants", "source_file"):
            assert got[n][key] == prompt_data[n][key], (n, key)
    assert set(P.UPSTREAM_PROMPT_FILES) >= set(sources)
