import Foundation

/// A ready sbatch array script for a manifest: one array task per shard, each running
/// `kiln render ... --shards N` (the task reads its shard from `SLURM_ARRAY_TASK_ID`). A task
/// interrupted by SIGTERM (scancel, preemption, `scontrol requeue`) exits 75, which Slurm
/// requeues when slurm.conf has `RequeueExit=75`; the requeued task resumes from its ledger.
public enum SlurmScript {
    /// `arguments`: the render command's own arguments after `kiln render` (paths absolute).
    public static func text(kiln: String, arguments: [String], shards: Int, jobName: String = "kiln-render") -> String {
        let command = ([kiln, "render"] + arguments + ["--shards", "\(shards)"]).map(quoted).joined(separator: " ")
        return """
            #!/bin/bash
            #SBATCH --job-name=\(jobName)
            #SBATCH --array=0-\(shards - 1)
            #SBATCH --requeue
            #SBATCH --output=\(jobName)-%A_%a.out
            #SBATCH --error=\(jobName)-%A_%a.err
            # One GPU per task on GPU partitions: #SBATCH --gres=gpu:1
            #
            # Each task renders the shard SLURM_ARRAY_TASK_ID (offset by SLURM_ARRAY_TASK_MIN) of
            # \(shards). On SIGTERM kiln stops at the next sampling step, records the running job as
            # interrupted and exits 75: with RequeueExit=75 in slurm.conf the task is requeued and
            # resumes, skipping the jobs its ledger records as done. Without it, resubmit the same
            # script: finished jobs are skipped and nothing is rendered twice.
            # `kiln render status` with the same manifest and --out merges every shard's ledger.
            exec \(command)

            """
    }

    /// Single-quoted for the shell.
    static func quoted(_ argument: String) -> String {
        if !argument.isEmpty, argument.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0) }) { return argument }
        return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
