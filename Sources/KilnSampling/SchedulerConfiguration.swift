import Foundation

/// The fields of a diffusers `scheduler_config.json` that Kiln's schedulers read.
///
/// Every field is optional on purpose: diffusers' `from_config` fills a key the file leaves out
/// with the *target* class's default, not the source class's, so the defaults live in each
/// scheduler (for example PNDM's SD1 config has no `timestep_spacing`, which makes
/// `EulerDiscreteScheduler.from_config` use `linspace` while DDIM uses `leading`).
/// Keys a class does not know are ignored, as diffusers ignores them.
public struct SchedulerConfiguration: Codable, Sendable, Equatable {
    public var className: String?
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: String?
    public var trainedBetas: [Double]?
    public var timestepSpacing: String?
    public var stepsOffset: Int?
    public var predictionType: String?
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var setAlphaToOne: Bool?
    public var rescaleBetasZeroSnr: Bool?
    public var useKarrasSigmas: Bool?
    public var interpolationType: String?
    public var finalSigmasType: String?
    public var solverOrder: Int?
    public var algorithmType: String?
    public var solverType: String?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    public var shift: Double?
    public var useDynamicShifting: Bool?
    public var baseShift: Double?
    public var maxShift: Double?
    public var baseImageSeqLen: Int?
    public var maxImageSeqLen: Int?
    public var skipPrkSteps: Bool?
    public var thresholding: Bool?
    public var varianceType: String?
    public var timestepType: String?
    public var useExponentialSigmas: Bool?
    public var useBetaSigmas: Bool?
    /// Bounds for Karras/exponential spacing; unset means the schedule's own first and last sigma.
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var useLuLambdas: Bool?
    public var useFlowSigmas: Bool?
    /// DPM-Solver: the log-SNR floor; diffusers writes its default as `-Infinity`.
    public var lambdaMinClipped: Double?
    /// LCM: the distillation schedule length its timesteps are drawn from (50).
    public var originalInferenceSteps: Int?
    /// LCM: the factor on the timestep in the boundary-condition scalings c_skip/c_out (10).
    public var timestepScaling: Double?
    /// Flow matching: stretch the shifted sigmas so the last one lands here.
    public var shiftTerminal: Double?
    /// Flow matching: run sigmas 1 - sigma (Mochi).
    public var invertSigmas: Bool?
    /// Flow matching: `exponential` (Flux, SD3) or `linear` dynamic time shift.
    public var timeShiftType: String?
    /// Flow matching: re-noise each step instead of the Euler update.
    public var stochasticSampling: Bool?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case timestepSpacing = "timestep_spacing"
        case stepsOffset = "steps_offset"
        case predictionType = "prediction_type"
        case clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range"
        case setAlphaToOne = "set_alpha_to_one"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case useKarrasSigmas = "use_karras_sigmas"
        case interpolationType = "interpolation_type"
        case finalSigmasType = "final_sigmas_type"
        case solverOrder = "solver_order"
        case algorithmType = "algorithm_type"
        case solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final"
        case eulerAtFinal = "euler_at_final"
        case shift
        case useDynamicShifting = "use_dynamic_shifting"
        case baseShift = "base_shift"
        case maxShift = "max_shift"
        case baseImageSeqLen = "base_image_seq_len"
        case maxImageSeqLen = "max_image_seq_len"
        case skipPrkSteps = "skip_prk_steps"
        case thresholding
        case varianceType = "variance_type"
        case timestepType = "timestep_type"
        case useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas"
        case sigmaMin = "sigma_min"
        case sigmaMax = "sigma_max"
        case useLuLambdas = "use_lu_lambdas"
        case useFlowSigmas = "use_flow_sigmas"
        case lambdaMinClipped = "lambda_min_clipped"
        case originalInferenceSteps = "original_inference_steps"
        case timestepScaling = "timestep_scaling"
        case shiftTerminal = "shift_terminal"
        case invertSigmas = "invert_sigmas"
        case timeShiftType = "time_shift_type"
        case stochasticSampling = "stochastic_sampling"
    }

    /// Decodes a `scheduler_config.json` file's bytes.
    ///
    /// Read as JSON5 because Python's `json.dumps`, which diffusers saves configs with, writes
    /// `Infinity` / `-Infinity` / `NaN` (DPM-Solver's `"lambda_min_clipped": -Infinity`).
    public static func decode(from data: Data) throws -> SchedulerConfiguration {
        // Foundation's JSON5 scanner traps (a fatal error, not a thrown one) on some invalid
        // UTF-8 inside a key, so the bytes are checked first.
        if let offset = firstInvalidUTF8Offset(data) {
            throw SchedulerError.invalidConfiguration("scheduler_config.json: not UTF-8 text (invalid byte at offset \(offset))")
        }
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        let configuration: SchedulerConfiguration
        do {
            configuration = try decoder.decode(SchedulerConfiguration.self, from: data)
        } catch {
            throw SchedulerError.invalidConfiguration("scheduler_config.json: \(error)")
        }
        try configuration.checkRanges()
        return configuration
    }

    /// Refuses values no trained schedule has, which would otherwise put timesteps outside the
    /// trained range (an image from a schedule the model never saw) or make absurd tables.
    func checkRanges() throws {
        func refuse(_ message: String) throws -> Never { throw SchedulerError.invalidConfiguration("scheduler_config.json: \(message)") }
        let trained = try checkedTrainTimestepCount()
        if let offset = stepsOffset, !(0..<trained).contains(offset) {
            try refuse("steps_offset \(offset) must be in 0..<\(trained) (num_train_timesteps)")
        }
        if let betas = trainedBetas, betas.count != trained { try refuse("trained_betas has \(betas.count) values for \(trained) timesteps") }
        for (name, value) in [("beta_start", betaStart), ("beta_end", betaEnd)] {
            if let value, !(0...1).contains(value) { try refuse("\(name) \(value) must be in [0, 1]") }
        }
        if let order = solverOrder, !(1...3).contains(order) { try refuse("solver_order \(order) must be 1, 2 or 3") }
    }

    /// The most training timesteps a configuration may give. diffusers' models use 1,000, and every
    /// schedule's tables (and Karras sigmas' search through them) grow with it: a hostile file's
    /// 10^12 would ask for terabytes, and 90,000 already took a second to set up in a debug build.
    public static let maximumTrainTimesteps = 10_000

    /// `num_train_timesteps` (1,000 when unset), checked to be within 2...`maximumTrainTimesteps`.
    func checkedTrainTimestepCount(scheduler: String? = nil) throws -> Int {
        let count = numTrainTimesteps ?? 1000
        guard (2...Self.maximumTrainTimesteps).contains(count) else {
            throw SchedulerError.invalidConfiguration(
                "\(scheduler.map { "\($0) " } ?? "")num_train_timesteps \(count) is outside 2...\(Self.maximumTrainTimesteps)")
        }
        return count
    }

    /// The offset of the first byte that is not part of valid UTF-8, or nil when all of it is.
    static func firstInvalidUTF8Offset(_ data: Data) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = data.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    /// Reads and decodes a `scheduler_config.json` file.
    public static func load(from url: URL) throws -> SchedulerConfiguration {
        try decode(from: Data(contentsOf: url))
    }
}

/// Why a scheduler could not be built or stepped.
public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    case invalidConfiguration(String)
    case unsupported(String)
    case timestepsNotSet(String)
    case noiseGeneratorRequired(String)
    case timestepNotInSchedule(String, Double)
    /// `step` or `addNoise` got arrays of different shapes.
    case shapeMismatch(String, [Int], [Int])
    /// Flow matching with `use_dynamic_shifting` was given no `mu`.
    case shiftParameterRequired(String)
    /// A scheduler without dynamic shifting was given a `mu`.
    case shiftParameterNotAccepted(String, Double)
    /// A sampler or sigma-spacing name that is not one of `validNames`.
    case unknownName(kind: String, name: String, validNames: [String])

    public var description: String {
        switch self {
        case .invalidConfiguration(let detail): return "invalid scheduler configuration: \(detail)"
        case .unsupported(let detail): return "unsupported scheduler setting: \(detail)"
        case .timestepsNotSet(let scheduler): return "[\(scheduler)] call setTimesteps before stepping"
        case .noiseGeneratorRequired(let scheduler): return "[\(scheduler)] this step draws noise: pass a generator"
        case .timestepNotInSchedule(let scheduler, let timestep):
            return "[\(scheduler)] timestep \(timestep) is not in the current schedule"
        case .shapeMismatch(let scheduler, let first, let second):
            return "[\(scheduler)] shapes \(first) and \(second) do not match"
        case .shiftParameterRequired(let scheduler):
            return "[\(scheduler)] use_dynamic_shifting needs mu: compute it from the image sequence length "
                + "(base_shift, max_shift, base_image_seq_len, max_image_seq_len) and pass it to setTimesteps"
        case .shiftParameterNotAccepted(let scheduler, let mu):
            return "[\(scheduler)] mu \(mu) given, but only flow matching with dynamic shifting takes one"
        case .unknownName(let kind, let name, let validNames):
            return "unknown \(kind) '\(name)': use one of \(validNames.joined(separator: ", "))"
        }
    }
}
