import Kiln

/// AUTOMATIC1111's sampler and scheduler names for the samplers Kiln runs, and how A1111 reads
/// them: names and aliases case-insensitively, schedulers by name or label, and the legacy
/// combined form ("DPM++ 2M Karras") split into sampler and scheduler. An unknown name is
/// refused with the known ones listed, never replaced by another sampler.
enum A1111Samplers {
    struct Sampler {
        let name: String
        let aliases: [String]
        let kiln: SamplerName
    }

    struct Scheduler {
        let name: String
        let label: String
        let aliases: [String]
        /// nil: the model's own spacing (A1111's "Automatic").
        let spacing: SigmaSpacing?
        let defaultRho: Double?
    }

    static let samplers: [Sampler] = [
        Sampler(name: "Euler a", aliases: ["k_euler_a", "k_euler_ancestral"], kiln: .eulerAncestral),
        Sampler(name: "Euler", aliases: ["k_euler"], kiln: .euler),
        Sampler(name: "DPM++ 2M", aliases: ["k_dpmpp_2m"], kiln: .dpmPlusPlus2M),
        Sampler(name: "Heun", aliases: ["k_heun"], kiln: .heun),
        Sampler(name: "LCM", aliases: ["k_lcm"], kiln: .lcm),
        Sampler(name: "DDIM", aliases: ["ddim"], kiln: .ddim),
        Sampler(name: "PLMS", aliases: ["plms"], kiln: .pndm),
        Sampler(name: "DDPM", aliases: ["ddpm"], kiln: .ddpm),
    ]

    static let schedulers: [Scheduler] = [
        Scheduler(name: "automatic", label: "Automatic", aliases: [], spacing: nil, defaultRho: nil),
        Scheduler(name: "karras", label: "Karras", aliases: [], spacing: .karras, defaultRho: 7),
        Scheduler(name: "exponential", label: "Exponential", aliases: [], spacing: .exponential, defaultRho: nil),
    ]

    /// A1111's schedulers Kiln does not run, so a request for one is told so by name.
    static let otherA1111Schedulers = [
        "uniform", "Uniform", "polyexponential", "Polyexponential", "sgm_uniform", "SGM Uniform", "SGMUniform", "kl_optimal",
        "KL Optimal", "align_your_steps", "Align Your Steps", "simple", "Simple", "normal", "Normal", "ddim", "DDIM", "beta", "Beta",
    ]

    /// What a request's `sampler_name` (or `sampler_index`) and `scheduler` resolve to.
    struct Choice {
        let sampler: Sampler
        let scheduler: Scheduler
    }

    /// Resolves A1111's names; `samplerField` names the field for errors. A scheduler suffix on
    /// the sampler name ("DPM++ 2M Karras") wins over `scheduler`, as A1111 splits it.
    static func resolve(sampler requested: String, scheduler schedulerName: String?, samplerField: String) throws -> Choice {
        var name = requested.trimmingCharacters(in: .whitespaces)
        var scheduler: Scheduler? = nil
        if let schedulerName, !schedulerName.isEmpty {
            guard let found = findScheduler(schedulerName) else {
                let known = schedulers.map { "\($0.name) (\($0.label))" }.joined(separator: ", ")
                let reason = otherA1111Schedulers.contains(schedulerName) ? "is an A1111 schedule Kiln does not run" : "is not a scheduler"
                throw APIError.invalid("scheduler", "'\(schedulerName)' \(reason); Kiln's: \(known)")
            }
            scheduler = found
        }
        // A1111 splits a trailing schedule label off the sampler name ("DPM++ 2M Karras").
        for candidate in schedulers + otherSchedulerSuffixes {
            guard let suffix = ([candidate.label] + candidate.aliases).first(where: { name.lowercased().hasSuffix(" " + $0.lowercased()) }) else {
                continue
            }
            guard schedulers.contains(where: { $0.name == candidate.name }) else {
                throw APIError.invalid(samplerField, "'\(requested)' asks for the \(suffix) schedule, which Kiln does not run (Kiln's: Automatic, Karras, Exponential)")
            }
            name = String(name.dropLast(suffix.count + 1))
            scheduler = candidate
            break
        }
        guard let sampler = findSampler(name) else {
            throw APIError.invalid(
                samplerField,
                "unknown sampler '\(requested)'; Kiln runs: \(samplers.map(\.name).joined(separator: ", ")) (or their aliases \(samplers.flatMap(\.aliases).joined(separator: ", ")))")
        }
        return Choice(sampler: sampler, scheduler: scheduler ?? schedulers[0])
    }

    /// Schedules A1111 accepts as sampler-name suffixes that Kiln does not run (refused by name).
    private static let otherSchedulerSuffixes: [Scheduler] = [
        Scheduler(name: "uniform", label: "Uniform", aliases: [], spacing: nil, defaultRho: nil),
        Scheduler(name: "sgm_uniform", label: "SGM Uniform", aliases: ["SGMUniform"], spacing: nil, defaultRho: nil),
        Scheduler(name: "polyexponential", label: "Polyexponential", aliases: [], spacing: nil, defaultRho: nil),
        Scheduler(name: "kl_optimal", label: "KL Optimal", aliases: [], spacing: nil, defaultRho: nil),
        Scheduler(name: "align_your_steps", label: "Align Your Steps", aliases: [], spacing: nil, defaultRho: nil),
        Scheduler(name: "simple", label: "Simple", aliases: [], spacing: nil, defaultRho: nil),
        Scheduler(name: "normal", label: "Normal", aliases: [], spacing: nil, defaultRho: nil),
        Scheduler(name: "beta", label: "Beta", aliases: [], spacing: nil, defaultRho: nil),
    ]

    static func findSampler(_ name: String) -> Sampler? {
        let key = name.lowercased()
        return samplers.first { $0.name.lowercased() == key || $0.aliases.contains(key) || $0.kiln.rawValue == key }
    }

    static func findScheduler(_ name: String) -> Scheduler? {
        let key = name.lowercased()
        return schedulers.first { $0.name == key || $0.label.lowercased() == key || $0.aliases.map { $0.lowercased() }.contains(key) }
    }

    /// A1111's name for a Kiln sampler name (`euler_a` -> "Euler a"); the model's own scheduler
    /// class when it has no A1111 name.
    static func a1111Name(ofKiln kiln: String) -> String {
        samplers.first { $0.kiln.rawValue == kiln }?.name ?? (kiln == SamplerName.flowEuler.rawValue ? "Euler" : kiln)
    }
}
