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
    # KeyboardInterrupt comes only once the generation has stopped: no step after it.
    steps_when_raised = len(steps)
    for thread in threading.enumerate():
        if thread.name == "kiln-generate":
            thread.join(30)
    assert len(steps) == steps_when_raised
    assert 1 <= len(steps) < 200
    assert len(pipeline.generate_png(prompt="a red car", seed=1, **SMALL)) == 1


def test_sigint_in_a_script_cancels_and_the_pipeline_goes_on(tiny_model, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    script = tmp_path / "interrupted.py"
    script.write_text(
        "import signal, sys, kiln\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"   # a background job starts with SIGINT ignored
        f"pipe = kiln.Pipeline({str(tiny_model)!r}, backend='cpu')\n"
        "try:\n"
        "    pipe.generate_png(prompt='a red car', width=64, height=64, steps=1000, sampler='euler', seed=1,\n"
        "                      progress=lambda step, steps, seconds: print('step', step, flush=True))\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "print(len(pipe.generate_png(prompt='a red car', width=64, height=64, steps=1, seed=1)), 'image', flush=True)\n")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    lines = []
    for line in process.stdout:
        lines.append(line.strip())
        if line.startswith("step 3"):
            process.send_signal(signal.SIGINT)
            break
    lines += [line.strip() for line in process.stdout]
    assert process.wait(120) == 0
    interrupted = lines.index("interrupted")
    assert all(not line.startswith("step") for line in lines[interrupted:])
    assert lines[-1] == "1 image"


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
