"""The one evaluation next to the random subset (``condensery run`` and ``condensery eval``): the
random arm has the set's own class counts and protocol, is drawn once, and finished pairs resume."""

from __future__ import annotations

import pytest
import torch
from condensery import Evaluator, Result, SyntheticSet, UserError
from condensery.evaluation import DoneStore, class_counts, evaluate_next_to_random, random_like
from condensery_eval.protocol import TrainProtocol

from .conftest import digits_recipe, task_context

RECIPE = digits_recipe('judgetest', width=8)


@pytest.fixture(scope="module")
def ctx():
    return task_context(RECIPE)


class Spy(Evaluator):
    """Records what it is given; ``compares`` sets whether the random arm is judged too."""

    def __init__(self, compares: bool = True) -> None:
        super().__init__(TrainProtocol())
        self.compares_random = compares
        self.seen: list[SyntheticSet] = []

    def evaluate(self, synset, ctx):
        self.seen.append(synset)
        return [Result.from_values("spy", "m", "", [float(len(self.seen))])]


def uneven(ctx) -> SyntheticSet:
    rows = [c for c in range(10) for _ in range(1 + c % 3)]
    x = ctx.data.train_x[: len(rows)]
    return SyntheticSet(x, torch.tensor(rows), lr=0.02, metadata={"teacher": {"path": "t"}})


def test_a_balanced_set_gets_exactly_the_runners_random_subset(ctx):
    s = ctx.random_subset(2, stream="judge-synthetic")
    rnd = random_like(ctx, s)
    base = ctx.random_subset(2)
    assert torch.equal(rnd.images, base.images) and torch.equal(rnd.labels, base.labels)
    assert rnd.metadata["role"] == "random" and rnd.metadata["ipc"] == 2


def test_an_uneven_set_gets_its_own_class_counts_and_protocol(ctx):
    s = uneven(ctx)
    rnd = random_like(ctx, s)
    assert class_counts(rnd, 10) == class_counts(s, 10) == [1 + c % 3 for c in range(10)]
    assert rnd.metadata["role"] == "random" and rnd.metadata["teacher"] == {"path": "t"}
    assert rnd.metadata["partner_lr"] == pytest.approx(0.02)
    assert len(rnd.metadata["drawn_indices"]) == len(s)
    assert torch.equal(random_like(ctx, s).images, rnd.images)  # one seeded stream: the same arm each time


def test_a_teacher_labelled_set_counts_as_class_balanced(ctx):
    """Soft labels without ``classes`` (DWA): the argmax is the teacher's opinion, not the class
    an image was made for; the arm is the class-balanced subset the runner always drew."""
    base = ctx.random_subset(1)
    soft = torch.full((10, 10), 0.01)
    soft[:, 3] = 0.91  # the teacher calls every image a 3
    s = SyntheticSet(base.images, soft)
    assert class_counts(s, 10) == [1] * 10
    assert torch.equal(random_like(ctx, s).images, base.images)
    odd = SyntheticSet(base.images[:9], soft[:9])  # no class-balanced reading: by argmax
    assert class_counts(odd, 10) == [0, 0, 0, 9, 0, 0, 0, 0, 0, 0]


def test_every_evaluator_judges_the_set_and_the_comparing_ones_the_random_arm(ctx):
    s = uneven(ctx)
    a, b, c = Spy(), Spy(compares=False), Spy()
    results = evaluate_next_to_random(ctx, [("a", a), ("b", b), ("c", c)], s)
    assert [r.set for r in results] == ["synthetic", "random", "synthetic", "synthetic", "random"]
    assert [len(e.seen) for e in (a, b, c)] == [2, 1, 2]
    assert a.seen[1] is c.seen[1]  # the random arm is drawn once
    assert a.seen[0].metadata["role"] == "synthetic" and "role" not in s.metadata  # the caller's set untouched
    assert class_counts(a.seen[1], 10) == class_counts(s, 10)


def test_finished_pairs_resume_from_the_done_store(ctx, tmp_path):
    s = ctx.random_subset(1, stream="judge-synthetic")
    path = tmp_path / "checkpoints" / "evaluate.json"
    first = evaluate_next_to_random(ctx, [("a", Spy())], s, DoneStore(path))
    assert path.is_file()
    again = Spy()
    second = evaluate_next_to_random(ctx, [("a", again)], s, DoneStore(path))
    assert again.seen == [] and [r.to_json() for r in second] == [r.to_json() for r in first]
    readonly = tmp_path / "other.json"
    evaluate_next_to_random(ctx, [("a", Spy())], s, DoneStore(readonly, write=False))  # a non-main process
    assert not readonly.exists()
    path.write_text('{"0:a:synthetic": [{"no": 1}]}')
    with pytest.raises(UserError, match="damaged; delete it to redo them, or start over") as err:
        DoneStore(path, fix="start over")
    assert "\n" not in str(err.value)
