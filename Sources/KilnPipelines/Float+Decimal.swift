extension Float {
    /// The decimal this value prints as (`0.7`, not 0.699999988): what Python holds after parsing
    /// the same text, so `int(steps * strength)` cuts the schedule where diffusers cuts it.
    var asTypedDecimal: Double { Double("\(self)") ?? Double(self) }
}
