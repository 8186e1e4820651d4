/// diffusers' `_step_index` / `_begin_index` bookkeeping for sigma-indexed schedulers.
///
/// The first call finds its timestep in the schedule; when a timestep appears twice (Heun,
/// Karras schedules with repeats) the *second* match is taken, so img2img that starts mid-schedule
/// does not skip a sigma. Later calls just advance.
struct StepIndexTracker: Sendable {
    var current: Int?
    /// Set by pipelines that start mid-schedule (img2img) to skip the timestep search.
    var begin: Int?

    mutating func reset() {
        current = nil
        begin = nil
    }

    mutating func resolve(timestep: Double, in timesteps: [Double], scheduler: String) throws -> Int {
        if let current {
            // Repeated timesteps start the search at the second match (as diffusers does), so a loop
            // over every timestep can step once past the schedule: an error, not an index past the tables.
            guard timesteps.indices.contains(current) else { throw SchedulerError.timestepNotInSchedule(scheduler, timestep) }
            return current
        }
        let index = try begin ?? Self.index(of: timestep, in: timesteps, scheduler: scheduler)
        guard timesteps.indices.contains(index) else { throw SchedulerError.timestepNotInSchedule(scheduler, timestep) }
        current = index
        return index
    }

    /// `resolve`, then past that step: what one call of a single-step sampler's `step` does.
    mutating func advance(past timestep: Double, in timesteps: [Double], scheduler: String) throws -> Int {
        guard !timesteps.isEmpty else { throw SchedulerError.timestepsNotSet(scheduler) }
        let index = try resolve(timestep: timestep, in: timesteps, scheduler: scheduler)
        current = index + 1
        return index
    }

    /// The schedule index `add_noise` / `scale_noise` noise to. Without a begin index diffusers
    /// searches for `timestep`; with one (img2img, inpainting) it ignores `timestep` and uses the
    /// current step index, or the begin index before the first step, so inpainting's per-step
    /// re-noising follows the loop.
    func noisingIndex(timestep: Double, in timesteps: [Double], scheduler: String) throws -> Int {
        guard let begin else { return try Self.index(of: timestep, in: timesteps, scheduler: scheduler) }
        let index = current ?? begin
        // One past the last timestep is the final sigma, which the sigma tables also hold.
        guard index >= 0, index <= timesteps.count else { throw SchedulerError.timestepNotInSchedule(scheduler, timestep) }
        return index
    }

    static func index(of timestep: Double, in timesteps: [Double], scheduler: String) throws -> Int {
        let matches = timesteps.indices.filter { timesteps[$0] == timestep }
        guard let first = matches.first else { throw SchedulerError.timestepNotInSchedule(scheduler, timestep) }
        return matches.count > 1 ? matches[1] : first
    }
}
