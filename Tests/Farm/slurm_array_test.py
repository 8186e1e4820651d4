#!/usr/bin/env python3
"""`kiln render` on a real single-node Slurm cluster (Debian's slurm-wlm and munge, on loopback).

Starts munged, slurmctld and slurmd itself (there is no systemd), submits the sbatch array script
`kiln render --emit-sbatch --shards 4` prints for a manifest of 26 jobs on the tiny SD1 model,
interrupts one running shard with SIGTERM (`scancel --signal=TERM --batch`), lets Slurm requeue it
(`RequeueExit=75`), and checks: every job has exactly one PNG, byte-identical to a single-process
run of the same manifest; no temporary file is left; the interrupted shard's ledger records the
interruption and the job done later; `kiln render status` reports every job done. Stops the
daemons by PID whatever happens.

    python3 Tests/Farm/slurm_array_test.py --kiln .build/debug/kiln

Needs root and `slurm-wlm` (scripts/install-system-packages.sh --farm installs it). Standard
library only. Prints "N passed, N failed" at the end; exits non-zero on any failure.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARDS = 4

SLURM_CONF = """ClusterName=kilntest
SlurmctldHost=localhost
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
SlurmUser=slurm
SlurmdUser=root
StateSaveLocation={state}/slurmctld
SlurmdSpoolDir={state}/slurmd
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={state}/jobcomp.log
RequeueExit=75
RequeueExitHold=76
KillWait=10
NodeName=localhost CPUs={cpus} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """munged, slurmctld and slurmd started here, stopped by PID."""

    def __init__(self, state):
        self.state = state
        self.conf = os.path.join(state, "slurm.conf")
        self.environment = dict(os.environ, SLURM_CONF=self.conf)
        self.pid_files = []

    def start(self):
        for folder in ("slurmctld", "slurmd"):
            os.makedirs(os.path.join(self.state, folder), exist_ok=True)
        shutil.chown(self.state, "slurm", "slurm")
        shutil.chown(os.path.join(self.state, "slurmctld"), "slurm", "slurm")
        with open(self.conf, "w") as file:
            file.write(SLURM_CONF.format(state=self.state, cpus=os.cpu_count() or 2))
        os.makedirs("/run/munge", exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        if not os.path.exists("/run/munge/munged.pid"):
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
            self.pid_files.append("/run/munge/munged.pid")
        subprocess.run("munge -n | unmunge > /dev/null", shell=True, check=True)
        subprocess.run(["/usr/sbin/slurmctld"], env=self.environment, check=True)
        self.pid_files.append(os.path.join(self.state, "slurmctld.pid"))
        subprocess.run(["/usr/sbin/slurmd"], env=self.environment, check=True)
        self.pid_files.append(os.path.join(self.state, "slurmd.pid"))
        deadline = time.time() + 60
        while time.time() < deadline:
            states = self.run(["sinfo", "-h", "-o", "%T"]).strip()
            if states == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node did not become idle: {states!r}")

    def run(self, arguments):
        return subprocess.run(arguments, env=self.environment, check=True, capture_output=True, text=True).stdout

    def queued(self, job_id):
        """The array's tasks still pending or running (squeue forgets a finished job after a while)."""
        listed = subprocess.run(["squeue", "-h", "-j", job_id], env=self.environment, capture_output=True, text=True)
        return listed.stdout.strip() if listed.returncode == 0 else ""

    def stop(self):
        for pid_file in reversed(self.pid_files):
            try:
                with open(pid_file) as file:
                    os.kill(int(file.read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kiln", default=os.path.join(ROOT, ".build", "debug", "kiln"))
    parser.add_argument("--timeout", type=float, default=600)
    arguments = parser.parse_args()
    kiln = os.path.abspath(arguments.kiln)
    results = {"passed": 0, "failed": 0}

    def check(condition, message):
        results["passed" if condition else "failed"] += 1
        print(("ok   " if condition else "FAIL ") + message, flush=True)

    work = tempfile.mkdtemp(prefix="kiln-slurm-")
    os.chmod(work, 0o755)
    cluster = Cluster(os.path.join(work, "slurm"))
    try:
        model = os.path.join(work, "model")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "tiny-model.py"), model], check=True, capture_output=True)
        manifest = os.path.join(work, "jobs.jsonl")
        with open(manifest, "w") as file:
            file.write('{"id": "light", "prompt": "a lighthouse at dusk", "seed": {"range": [0, 23]}, "steps": 12, "width": 64, "height": 64}\n')
            file.write('{"id": "pair", "prompt": "two boats", "seed": [7, 8], "steps": 12, "width": 64, "height": 48, "batch_count": 2}\n')
        common = ["--model", model, "--backend", "cpu", "--quiet"]

        reference = os.path.join(work, "reference")
        subprocess.run([kiln, "render", manifest, "--out", reference] + common, check=True)
        expected = sorted(name for name in os.listdir(reference) if name.endswith(".png"))
        check(len(expected) == 24 + 4, f"the single-process run made {len(expected)} PNGs")

        cluster.start()
        out = os.path.join(work, "out")
        script = subprocess.run([kiln, "render", manifest, "--out", out, "--emit-sbatch", "--shards", str(SHARDS)] + common,
                                check=True, capture_output=True, text=True).stdout
        script_path = os.path.join(work, "render.sbatch")
        with open(script_path, "w") as file:
            file.write(script)
        submitted = cluster.run(["sbatch", "--parsable", "--chdir", work, script_path]).strip()
        job_id = submitted.split(";")[0]
        print(f"submitted array job {job_id}", flush=True)

        # Interrupt the first shard that has started a job, once its ledger says so.
        interrupted_task = None
        deadline = time.time() + arguments.timeout
        while interrupted_task is None and time.time() < deadline:
            for task in range(SHARDS):
                ledger = os.path.join(out, f"ledger-{task}-of-{SHARDS}.jsonl")
                if os.path.exists(ledger) and '"started"' in open(ledger).read() and '"interrupted"' not in open(ledger).read():
                    # slurmctld answers "try again later" while it updates the task.
                    sent = subprocess.run(["scancel", "--signal=TERM", "--batch", f"{job_id}_{task}"], env=cluster.environment,
                                          capture_output=True, text=True)
                    if sent.returncode == 0:
                        interrupted_task = task
                        print(f"sent SIGTERM to task {task}", flush=True)
                        break
            time.sleep(0.2)
        check(interrupted_task is not None, "a running shard was interrupted")

        while time.time() < deadline and cluster.queued(job_id):
            time.sleep(2)
        check(not cluster.queued(job_id), "every array task finished within the time limit")

        made = sorted(name for name in os.listdir(out) if name.endswith(".png"))
        check(made == expected, f"every job has exactly one PNG ({len(made)} of {len(expected)})")
        identical = all(open(os.path.join(out, name), "rb").read() == open(os.path.join(reference, name), "rb").read() for name in made)
        check(identical and made, "the PNGs are byte-identical to the single-process run")
        check(not [name for name in os.listdir(out) if name.endswith(".tmp")], "no temporary file is left")
        if interrupted_task is not None:
            events = [json.loads(line) for line in open(os.path.join(out, f"ledger-{interrupted_task}-of-{SHARDS}.jsonl"))]
            stopped = [event["id"] for event in events if event["event"] == "interrupted"]
            check(bool(stopped), f"shard {interrupted_task}'s ledger records the interruption")
            check(all(any(event["event"] == "done" and event["id"] == job for event in events) for job in stopped),
                  "the interrupted job was done after the requeue")
            requeues = [line for line in open(os.path.join(cluster.state, "jobcomp.log")) if "ExitCode=75" in line or "REQUEUE" in line]
            check(bool(requeues), "Slurm saw the exit code 75 and requeued the task")
        status = json.loads(subprocess.run([kiln, "render", "status", manifest, "--out", out, "--json"],
                                           check=True, capture_output=True, text=True).stdout)
        check(status["done"] == status["total"] == 26 and status["pending"] == 0 and status["failed"] == 0,
              f"kiln render status: {status['done']} of {status['total']} done")
        for log in sorted(glob.glob(os.path.join(work, "kiln-render-*.err"))):
            text = open(log).read().strip()
            if text:
                print(f"--- {os.path.basename(log)}\n{text}")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
