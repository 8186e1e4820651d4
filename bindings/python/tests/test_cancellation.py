"""cancel() from another thread, Ctrl-C, and exceptions in progress callbacks all stop a run
at a step boundary, and the pipeline works normally afterwards."""

import _thread
import threading

import pytest

import kiln
from conftest import SMALL

LONG = dict(prompt="a red car", sampler="euler", seed=9, width=64, height=64, steps=200)


def test_cancel_from_another_thread_raises_cancelled(pipeline):
    started = threading.Event()
    steps = []

    def canceller():
        started.wait(60)
        pipeline.cancel()

    thread = threading.Thread(target=canceller)
    thread.start()

    def progress(step, total, seconds):
        steps.append(step)
        started.set()

    with pytest.raises(kiln.Cancelled) as raised:
        pipeline.generate_png(progress=progress, **LONG)
    thread.join()
    assert "cancelled" in str(raised.value)
    assert 1 <= len(steps) < 200
    # The cancel reached only the generation that was running.
    assert len(pipeline.generate_png(prompt="a red car", seed=1, **SMALL)) == 1


def test_ctrl_c_cancels_and_raises_keyboard_interrupt(pipeline):
    steps = []

    def progress(step, total, seconds):
        steps.append(step)
        if step == 1:
            _thread.interrupt_main()   # what Ctrl-C does

    with pytest.raises(KeyboardInterrupt):
        pipeline.generate_png(progress=progress, **LONG)
    assert 1 <= len(steps) < 200
    assert len(pipeline.generate_png(prompt="a red car", seed=1, **SMALL)) == 1


def test_an_exception_in_progress_stops_the_run_and_is_raised(pipeline):
    steps = []

    def progress(step, total, seconds):
        steps.append(step)
        raise ZeroDivisionError("from the callback")

    with pytest.raises(ZeroDivisionError, match="from the callback"):
        pipeline.generate_png(progress=progress, **LONG)
    assert len(steps) == 1


def test_cancel_with_nothing_running_does_not_stop_the_next_run(pipeline):
    pipeline.cancel()
    assert len(pipeline.generate_png(prompt="a red car", seed=1, **SMALL)) == 1


def test_close_cancels_a_running_generation(tiny_model):
    pipe = kiln.Pipeline(tiny_model, backend="cpu")
    started = threading.Event()
    outcome = []

    def work():
        try:
            pipe.generate_png(progress=lambda *_: started.set(), **LONG)
        except kiln.KilnError as error:
            outcome.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    assert started.wait(60)
    pipe.close()
    thread.join()
    assert pipe.closed
    assert len(outcome) == 1 and isinstance(outcome[0], kiln.Cancelled)


def test_generating_from_inside_a_progress_callback_is_refused(pipeline):
    def progress(step, total, seconds):
        pipeline.generate_png(prompt="a blue boat", seed=2, **SMALL)

    with pytest.raises(kiln.BadInput, match="inside a progress callback"):
        pipeline.generate_png(progress=progress, **LONG)
