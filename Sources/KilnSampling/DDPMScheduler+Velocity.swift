extension DDPMScheduler {
    /// The number of training timesteps, the range a training timestep is drawn from.
    public var trainTimestepCount: Int { schedule.trainTimestepCount }

    /// ᾱ_t, the cumulative product of the training alphas at integer timestep `timestep` (float32
    /// as diffusers keeps `alphas_cumprod`).
    public func alphaCumulativeProduct(at timestep: Double) throws -> Float {
        schedule.alphasCumulativeProduct[try schedule.trainingIndex(timestep, scheduler: "DDPMScheduler")]
    }

    /// diffusers' `get_velocity(sample, noise, timesteps)`, the v-prediction target of Salimans &
    /// Ho (https://arxiv.org/abs/2202.00512): `sqrt(ᾱ_t) * noise - sqrt(1 - ᾱ_t) * sample`, in float32.
    public func velocity(sample: ShapedArray, noise: ShapedArray, timestep: Double) throws -> ShapedArray {
        try requireSameShape(sample, noise, scheduler: "DDPMScheduler")
        let alphaProduct = try alphaCumulativeProduct(at: timestep)
        let signal = alphaProduct.squareRoot()
        let noiseScale = (1 - alphaProduct).squareRoot()
        return noise.zip(sample) { signal * $0 - noiseScale * $1 }
    }
}
