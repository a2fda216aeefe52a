"""mi_lib.answers (answers as plain data) and the checks' hygiene: nothing of the reference left
where a notebook can read it, and answers that compare equal to anything refused."""

import gc
import json
import math
import types

import numpy as np
import pytest
import torch

from mi_lib import linear_schedule, rate
from mi_lib.answers import NotPlain, Refused, decode, encode, export_answers, finite, plain, read_answers
from mi_lib.exercises import EXERCISES, ExerciseFailed, check, verdict
from mi_lib.exercises.diffusion import diffusion_step
from mi_lib.exercises.intro import intro_1d


def test_plain_values_travel_unchanged_through_json():
    r = rate(torch.tensor([True, False, False]))
    value = {"k": [1, 2.5, None, True, "s"], 3.0: (r, r), (1, 2): np.float64(0.25), "n": np.int64(7),
             "t": torch.arange(6, dtype=torch.float64).reshape(2, 3), "a": np.arange(4, dtype=np.int32)}
    back = decode(json.loads(json.dumps(encode(value))))
    assert back.keys() == value.keys() and back[3.0] == (r, r) and type(back[3.0][0]) is type(r)
    assert back["k"] == value["k"] and back[(1, 2)] == 0.25 and type(back["n"]) is int
    assert torch.equal(back["t"], value["t"]) and np.array_equal(back["a"], value["a"])


class Anything(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class Zeros(torch.Tensor):
    def __sub__(self, other):
        return torch.zeros_like(other)


@pytest.mark.parametrize("value, where", [
    (Anything(1.0), "a Anything ("), (torch.zeros(2).as_subclass(Zeros), "a Zeros ("), (object(), "a object ("),
    ({1.0: [Anything(0.0)]}, "a Anything in answer[1.0][0] ("), (torch.zeros(2, dtype=torch.complex64), "complex64"),
    (np.array([object()]), "array of object"),
])
def test_what_could_compare_equal_to_anything_is_refused(value, where):
    with pytest.raises(NotPlain, match=where.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")):
        plain(value)


@pytest.mark.parametrize("obj", [{"evil": 1}, {"tensor": {"dtype": "float64", "shape": [3], "data": [1.0]}},
                                 {"tensor": {"dtype": "object", "shape": [1], "data": [1]}},
                                 {"rate": [1.0, 2, 0.5, 0.1, 0.9]}, [1, 2], {"dict": [[[1], 2]]}])
def test_decode_refuses_what_encode_never_writes(obj):
    with pytest.raises(NotPlain):
        decode(obj)


def test_non_finite_values_are_found_wherever_they_sit():
    assert finite({1.0: [2.0, torch.ones(3)]})
    for bad in (math.nan, -math.inf, [1.0, math.nan], {0.1: torch.tensor([1.0, math.nan])}, np.array([math.inf])):
        assert not finite(plain(bad))


def test_answers_exported_by_a_kernel_are_read_back_strictly(tmp_path):
    export_answers("ex-intro-1d", ["p_1d", "p_2d", "gone"], {"p_1d": 0.5, "p_2d": Anything(1.0)}, tmp_path)
    got = read_answers(tmp_path, "ex-intro-1d")
    assert got["p_1d"] == 0.5 and "gone" not in got
    assert isinstance(got["p_2d"], Refused) and got["p_2d"].why.startswith("a Anything (")
    (tmp_path / "ex-intro-2d.json").symlink_to(tmp_path / "ex-intro-1d.json")  # links are not followed
    assert read_answers(tmp_path, "ex-intro-2d") is None
    (tmp_path / "ex-diffusion-signal.json").write_text('{"label": "ex-intro-1d", "answers": {}}')
    assert read_answers(tmp_path, "ex-diffusion-signal") is None  # another exercise's record


def values_in(obj, depth=0):
    """Every value reachable from `obj` through containers and objects' __dict__, a few levels deep."""
    yield obj
    if depth >= 4:
        return
    items = (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple | set)
             else vars(obj).values() if hasattr(obj, "__dict__") and not isinstance(obj, type) else ())
    for x in list(items):
        yield from values_in(x, depth + 1)


def reachable_from(tb):
    """Everything in the locals of every frame of traceback `tb` (what %debug and
    sys.last_traceback show) but the first, the test's own."""
    frames, tb = [], tb.tb_next
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return [v for f in frames for v in values_in(dict(f.f_locals))]


def test_a_failed_check_leaves_no_reference_in_any_frame():
    expected = math.erfc(6 / math.sqrt(2))
    with pytest.raises(ExerciseFailed) as failed:
        check("ex-intro-1d", {"p_1d": 0.5})
    assert failed.value.__context__ is None and failed.value.__cause__ is None
    floats = [v for v in reachable_from(failed.value.__traceback__) if isinstance(v, float)]
    assert 0.5 in floats and not any(math.isclose(v, expected) for v in floats)
    assert not [o for o in gc.get_objects() if type(o) is types.FrameType and o.f_code is intro_1d.__code__]


def test_a_failed_tensor_check_leaves_no_reference_either():
    schedule = linear_schedule(1000)
    xt, eps_pred, z = torch.randn(5, 1), torch.randn(5, 1), torch.randn(5, 1)
    inputs = {"xt": xt, "t": 10, "eps_pred": eps_pred, "z": z, "schedule": schedule}
    with pytest.raises(ExerciseFailed) as failed:
        check("ex-diffusion-step", {"by_hand": torch.zeros(5, 1), **inputs})
    tensors = [v for v in reachable_from(failed.value.__traceback__) if isinstance(v, torch.Tensor)]
    from mi_lib import reverse_step, reverse_variance

    sigma = float(reverse_variance(schedule, "fixed_large")[10].sqrt())
    expected, _ = reverse_step(xt, 10, eps_pred, schedule, sigma, z)
    assert tensors and not any(v.shape == expected.shape and torch.allclose(v, expected) for v in tensors)
    assert not [o for o in gc.get_objects() if type(o) is types.FrameType and o.f_code is diffusion_step.__code__]


def test_redefined_inputs_fool_only_the_notebooks_own_feedback():
    class schedule:  # alpha_bar below 0.01 from t = 5: the in-notebook check then wants 5 and 0.5
        alpha_bar = torch.cat([torch.ones(5), torch.zeros(5)]).double()

    check("ex-diffusion-signal", t_one_percent=5, share=0.5, schedule=schedule)  # feedback, on the student's inputs
    message = verdict("ex-diffusion-signal", {"t_one_percent": 5, "share": 0.5}, {"schedule": linear_schedule(1000)})
    assert message == "t_one_percent should be the first step where alpha_bar < 0.01, got 5"  # the grader's inputs


def test_nan_and_subclasses_fail_where_they_once_passed():
    schedule, x = linear_schedule(1000), torch.randn(5, 1)
    inputs = {"xt": x, "t": 10, "eps_pred": x, "z": x, "schedule": schedule}
    for by_hand, why in [(torch.full((5, 1), math.nan), "only finite numbers are graded"),
                         (torch.zeros(5, 1).as_subclass(Zeros), "got a Zeros (")]:
        assert why in verdict("ex-diffusion-step", {"by_hand": by_hand}, inputs)
    r = rate(torch.tensor([True, False]))
    evil = type(r)(Anything(0.0), 2, 0.5, 0.1, 0.9)  # a Rate whose count equals every count
    assert "Anything" in verdict("ex-shapes-readable", {"rate_readable": evil}, {"labels": np.array(["in support"])})
    assert set(EXERCISES) >= {"ex-diffusion-step", "ex-shapes-readable"}
