"""Learning-rate schedules: warm-up + cosine (the paper's) and warmup-stable-decay, each ending at
its floor on the last trained step; values checked against hand-computed numbers."""

import math

import pytest

from lightning_modules.schedule import (
    Schedule,
    decay_start,
    warmup_cosine,
    warmup_stable_decay,
)

PEAK, FLOOR = 1e-3, 1e-5


def test_cosine():
    """111 steps (0..110), warm-up 10: the decay spans steps 10..110, halfway at step 60, and the
    last trained step is at the floor."""
    warmup, total = 10, 111
    lrs = [warmup_cosine(s, PEAK, FLOOR, warmup, total) for s in range(total)]
    assert lrs[0] == pytest.approx(PEAK / warmup)
    assert lrs[warmup - 1] == pytest.approx(PEAK)
    assert lrs[warmup] == pytest.approx(PEAK)
    assert lrs[60] == pytest.approx((PEAK + FLOOR) / 2)
    assert lrs[total - 1] == pytest.approx(FLOOR, rel=1e-12)
    assert all(a > b for a, b in zip(lrs[warmup:], lrs[warmup + 1 :], strict=False))


def test_a_100_step_run_trains_its_last_step_at_the_floor():
    """100 steps once ended at 3.1e-4 of the peak instead of the 1e-5 floor."""
    assert warmup_cosine(99, PEAK, FLOOR, 20, 100) == pytest.approx(FLOOR, rel=1e-12)


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("1-sqrt", lambda p: 1 - math.sqrt(p)),
        ("linear", lambda p: 1 - p),
        ("cosine", lambda p: 0.5 * (1 + math.cos(math.pi * p))),
    ],
)
def test_wsd_warmup_stable_decay(shape, expected):
    """100 steps, warm-up 10, decay fraction 0.2: warm-up on steps 0..9, the peak on 10..79, the
    decay on 80..99 (20 steps; step 80 is 1/20 of the way, step 99 the floor)."""
    warmup, total = 10, 100
    lr = [warmup_stable_decay(s, PEAK, FLOOR, warmup, total, 0.2, shape) for s in range(total)]
    assert lr[0] == pytest.approx(PEAK / 10) and lr[9] == pytest.approx(PEAK)
    assert all(x == PEAK for x in lr[10:80])  # stable: exactly the peak
    assert decay_start(total, 0.2) == 80
    for step in (80, 85, 90, 99):
        progress = (step - 79) / 20
        assert lr[step] == pytest.approx(FLOOR + (PEAK - FLOOR) * expected(progress), rel=1e-12)
    assert lr[99] == pytest.approx(FLOOR, rel=1e-12)  # the last trained step
    assert lr[80] < PEAK
    assert all(a > b for a, b in zip(lr[79:], lr[80:], strict=False))


def test_wsd_stable_phase_is_a_prefix_of_any_longer_run():
    """The branch property: every step before a run's decay has the lr a longer run has there."""
    short, long = 200, 800
    start = decay_start(short, 0.2)
    for step in range(start):
        a = warmup_stable_decay(step, PEAK, FLOOR, 20, short, 0.2)
        b = warmup_stable_decay(step, PEAK, FLOOR, 20, long, 0.2)
        assert a == b


def test_schedule_dispatches_on_kind():
    cosine = Schedule("cosine", PEAK, FLOOR, 10, 111)
    wsd = Schedule("wsd", PEAK, FLOOR, 10, 100, 0.2, "linear")
    assert cosine(60) == pytest.approx((PEAK + FLOOR) / 2)
    assert wsd(50) == PEAK and wsd(99) == pytest.approx(FLOOR)
    assert wsd(89) == pytest.approx(FLOOR + (PEAK - FLOOR) * (1 - 10 / 20))
