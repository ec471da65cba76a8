import random
from collections import Counter

import pytest

from mtlcli.training.sampling import epoch_schedule, task_probabilities

BATCHES = {"ner": 30, "qa": 10}


def test_round_robin_interleaves_then_finishes_the_larger_task():
    schedule = epoch_schedule(BATCHES, "sampled", "round_robin", 0, 2, random.Random(0))
    assert [s[0] for s in schedule[:4]] == ["ner", "qa", "ner", "qa"]
    assert Counter(s[0] for s in schedule) == Counter(BATCHES)
    assert all(s == ("ner",) for s in schedule[20:])


def test_proportional_uses_every_batch_once():
    schedule = epoch_schedule(BATCHES, "sampled", "proportional", 0, 2, random.Random(1))
    assert Counter(s[0] for s in schedule) == Counter(BATCHES)


def test_temperature_probabilities_follow_the_formula():
    probabilities = task_probabilities(BATCHES, "temperature:2", 0, 3)
    expected = 30**0.5 / (30**0.5 + 10**0.5)
    assert probabilities["ner"] == pytest.approx(expected)
    schedule = epoch_schedule({"ner": 3000, "qa": 1000}, "sampled", "temperature:2", 0, 3, random.Random(2))
    share = sum(s == ("ner",) for s in schedule) / len(schedule)
    assert len(schedule) == 4000 and share == pytest.approx(expected, abs=0.03)


def test_annealed_goes_from_proportional_to_nearly_uniform():
    first = task_probabilities(BATCHES, "annealed", 0, 3)["ner"]
    last = task_probabilities(BATCHES, "annealed", 2, 3)["ner"]
    assert first == pytest.approx(0.75)
    assert last == pytest.approx(30**0.2 / (30**0.2 + 10**0.2))


def test_joint_mode_takes_every_task_each_step():
    schedule = epoch_schedule(BATCHES, "joint", "round_robin", 0, 1, random.Random(0))
    assert len(schedule) == 30 and set(schedule) == {("ner", "qa")}
