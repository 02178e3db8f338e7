"""Which chunks compaction merges, decided from their sizes and ages alone (no database)."""

from __future__ import annotations

from pitbox.telemetry.compaction import ChunkSpan, Step, plan_step


def spans(*sizes: int, settled: int | None = None, start: int = 0) -> list[ChunkSpan]:
    """One-part chunks numbered from `start`; the first `settled` of them settled (all when None)."""
    count = len(sizes) if settled is None else settled
    return [ChunkSpan(start + i, start + i, size, i < count) for i, size in enumerate(sizes)]


def test_a_full_run_of_settled_chunks_is_merged() -> None:
    step = plan_step(spans(*[60] * 12), chunk_samples=600, ended=False, complete=True)
    assert step == Step((0, 9), 10, look_again=True)


def test_a_run_waits_while_the_next_chunk_could_still_join_it() -> None:
    step = plan_step(spans(*[60] * 12, settled=5), chunk_samples=600, ended=False, complete=True)
    assert step == Step(None, 0, look_again=False)


def test_the_tail_of_a_live_session_waits_for_more_batches() -> None:
    step = plan_step(spans(60, 60, 60, start=10), chunk_samples=600, ended=False, complete=True)
    assert step == Step(None, 10, look_again=False)


def test_the_tail_of_an_ended_session_is_merged_whatever_its_age() -> None:
    step = plan_step(spans(60, 60, 5, settled=0, start=10), chunk_samples=600, ended=True, complete=True)
    assert step == Step((10, 12), 13, look_again=True)


def test_large_chunks_are_left_alone_and_a_lone_small_one_is_not_rewritten() -> None:
    step = plan_step(spans(600, 600, 300, 400, 600), chunk_samples=600, ended=True, complete=True)
    assert step == Step(None, None, look_again=False)


def test_a_merged_chunk_counts_for_the_numbers_it_covers() -> None:
    chunks = [ChunkSpan(0, 9, 600, True), ChunkSpan(10, 12, 185, True), ChunkSpan(13, 13, 60, True)]
    assert plan_step(chunks, chunk_samples=600, ended=True, complete=True) == Step(
        (10, 13), 14, look_again=True
    )


def test_chunks_that_do_not_follow_each_other_are_not_merged() -> None:
    chunks = [ChunkSpan(0, 0, 60, True), ChunkSpan(2, 2, 60, True)]
    assert plan_step(chunks, chunk_samples=600, ended=True, complete=True) == Step(
        None, None, look_again=False
    )


def test_past_a_window_of_large_chunks_the_next_look_starts_after_it() -> None:
    step = plan_step(spans(700, 700, 700), chunk_samples=2, ended=False, complete=False)
    assert step == Step(None, 3, look_again=True)
