"""Two pipelines generate from two threads at once; one pipeline used from two threads runs
their generations one after the other. Either way every result is exactly the one-thread one."""

import threading

import kiln
from conftest import SMALL

REQUESTS = [dict(prompt="a red car", seed=11, **SMALL), dict(prompt="a blue boat", seed=22, sampler="euler", **SMALL)]


def run_in_threads(jobs):
    """Runs each job on its own thread at once; returns their results (re-raising failures)."""
    results = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(len(jobs))

    def run(index, job):
        try:
            barrier.wait(30)
            results[index] = job()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index, job)) for index, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_two_pipelines_on_two_threads_at_once(pipeline, tiny_model):
    expected = [pipeline.generate_png(**request) for request in REQUESTS]
    with kiln.Pipeline(tiny_model, backend="cpu") as first, kiln.Pipeline(tiny_model, backend="cpu") as second:
        for _ in range(2):
            results = run_in_threads([lambda: first.generate_png(**REQUESTS[0]), lambda: second.generate_png(**REQUESTS[1])])
            assert results == expected


def test_one_pipeline_from_two_threads_is_serialised(pipeline):
    expected = [pipeline.generate_png(**request) for request in REQUESTS]
    events = []
    lock = threading.Lock()

    def job(index):
        def progress(step, steps, seconds):
            with lock:
                events.append(index)
        return lambda: pipeline.generate_png(progress=progress, **REQUESTS[index])

    for _ in range(2):
        events.clear()
        assert run_in_threads([job(0), job(1), job(0)]) == [expected[0], expected[1], expected[0]]
        # Each generation's steps come together: the runs never interleave.
        runs = [index for position, index in enumerate(events) if position == 0 or events[position - 1] != index]
        assert len(runs) <= 3 and sorted(runs) in ([0, 0, 1], [0, 1]) and len(events) == 3 + 2 + 3
