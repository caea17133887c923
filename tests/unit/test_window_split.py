"""Window splitting (shared/core/windows.py) and when a split walk is complete (shared/core/chain.py)."""

import itertools
import json

from shared.core.chain import Segment, is_covered, walk_state
from shared.core.windows import SplitPolicy, Walked, plan_split

POLICY = SplitPolicy(window_pages=25, max_children=8, probe_pages=2)
T = 1_700_000_000


def partitions(children, lo, hi):
    """The children cover [lo, hi] exactly: contiguous, in order, none empty."""
    first, last = children[0], children[-1]
    return (
        first[0] == lo
        and last[1] == hi
        and all(a[1] + 1 == b[0] for a, b in itertools.pairwise(children))
        and all(c[0] is None or c[0] <= c[1] for c in children)
    )


def test_a_known_big_total_splits_the_rest_into_even_windows_the_oldest_open():
    walked = Walked((None, None), newest=T, oldest=T - 999, rows=1000, pages=1, total=250_000)
    split = plan_split(POLICY, walked)
    assert split is not None and split.at == T - 999
    assert len(split.children) == 8 and partitions(split.children, None, T - 999)
    assert split.estimate == 32  # 249 pages left over 8 windows


def test_a_bounded_window_keeps_its_own_start():
    walked = Walked((T - 500_000, T), newest=T, oldest=T - 999, rows=1000, pages=1, total=100_000)
    split = plan_split(POLICY, walked)
    assert split is not None and partitions(split.children, T - 500_000, T - 999)


def test_nothing_to_gain_means_no_split():
    small = Walked((None, None), newest=T, oldest=T - 999, rows=1000, pages=1, total=40_000)  # 39 pages left
    assert plan_split(POLICY, small) is None
    at_the_top = Walked((None, T - 999), newest=T - 999, oldest=T - 999, rows=1000, pages=1, total=10**6)
    assert plan_split(POLICY, at_the_top) is None  # one second fills the page: children would be the window again
    at_the_bottom = Walked((T - 999, None), newest=T, oldest=T - 999, rows=1000, pages=1, total=10**6)
    assert plan_split(POLICY, at_the_bottom) is None
    off = SplitPolicy(enabled=False)
    assert plan_split(off, Walked((None, None), T, T - 999, 1000, 1, 10**6)) is None


def test_without_a_total_the_pace_is_probed_first():
    first = Walked((T - 10**7, None), newest=T, oldest=T - 999, rows=1000, pages=1, total=None)
    assert plan_split(POLICY, first) is None
    second = Walked((T - 10**7, None), newest=T, oldest=T - 1999, rows=2000, pages=2, total=None)
    split = plan_split(POLICY, second)  # a trade a second for 10^7 s: ~10,000 pages left
    assert split is not None and partitions(split.children, T - 10**7, T - 1999)


def test_without_a_total_or_a_start_windows_double_back_in_time_the_oldest_open():
    early = Walked((None, None), newest=T, oldest=T - 1999, rows=2000, pages=2, total=None)
    assert plan_split(POLICY, early) is None  # not proved big yet: two pages may be all there is
    walked = Walked((None, None), newest=T, oldest=T - 1999, rows=50_000, pages=50, total=None)
    split = plan_split(POLICY, walked)
    assert split is not None and partitions(split.children, None, T - 1999)
    spans = [c[1] - c[0] + 1 for c in split.children[1:]]
    assert spans == [8000, 4000, 2000]  # the newest as long as what was read, each older one twice that


def seg(window, part, cin, cout, final=False, split_at=None, children=(), since=None, until=None):
    lo, hi = window
    kids = json.dumps([list(c) for c in children]) if children else None
    return Segment(
        "w", "r", part, f"u-{lo}-{hi}-{part}-{cin}", 10, final, cin, cout, since, until, lo, hi, split_at, kids
    )


ROOT = (None, None)
A, B = (None, 99), (100, 199)


def test_a_split_walk_is_complete_only_when_every_child_is():
    parent = seg(ROOT, 0, None, None, final=True, split_at=199, children=(A, B))
    a = [seg(A, 0, None, "a1"), seg(A, 1, "a1", None, final=True)]
    b = [seg(B, 0, None, None, final=True)]
    assert walk_state([parent, *a, *b]).complete
    state = walk_state([parent, a[0], *b])  # A's final part not loaded
    assert not state.complete and [(p.window, p.part, p.cursor) for p in state.pending] == [(A, 1, "a1")]
    state = walk_state([parent])
    assert {(p.window, p.part) for p in state.pending} == {(A, 0), (B, 0)}
    assert walk_state([*a, *b]).pending[0].window == ROOT  # the children alone leave (199, now] uncovered


def test_a_child_that_splits_again_needs_its_own_children():
    parent = seg(ROOT, 0, None, None, final=True, split_at=199, children=(A, B))
    a = seg(A, 0, None, None, final=True, split_at=49, children=((None, 49),))
    b = seg(B, 0, None, None, final=True)
    assert not walk_state([parent, a, b]).complete
    assert walk_state([parent, a, b, seg((None, 49), 0, None, None, final=True)]).complete


def test_a_sync_walk_is_covered_from_its_since():
    parent = seg((500, None), 0, None, None, final=True, split_at=900, children=((500, 700), (701, 900)), since=500)
    kids = [seg((500, 700), 0, None, None, True, since=500), seg((701, 900), 0, None, None, True, since=500)]
    state = walk_state([parent, *kids])
    assert state.complete and (state.since, state.until) == (500, None)


def test_coverage_is_a_sweep_over_inclusive_seconds():
    assert is_covered([(None, 10), (11, None)], None, None)
    assert not is_covered([(None, 10), (12, None)], None, None)
    assert is_covered([(5, 10), (0, 6)], 0, 10)
    assert not is_covered([], 0, 10)


def test_no_window_is_a_single_second_which_dome_would_refuse():
    """Dome answers 400 to start_time >= end_time: every child must span at least two seconds."""
    cases = [
        Walked((None, None), newest=T, oldest=T - 3, rows=1000, pages=1, total=10**6),  # dense: 250 a second
        Walked((T - 40, None), newest=T, oldest=T - 9, rows=1000, pages=1, total=10**6),
        Walked((None, None), newest=T, oldest=T, rows=50_000, pages=50, total=None),
    ]
    for walked in cases:
        split = plan_split(POLICY, walked)
        assert split is not None
        assert all(lo is None or lo < hi for lo, hi in split.children), split.children
