/// torchvision's `Compose([Resize(R, interpolation=BILINEAR), CenterCrop(R)])` on a PIL image,
/// the non-random transforms of diffusers' Diffusion-DPO training scripts: the shorter side
/// resized to R (the longer one to `int(R * long / short)`, untouched when it already is that
/// size) with Pillow's antialiasing bilinear filter, then the central R x R square, its top-left
/// corner at `int(round((side - R) / 2))` (Python's round: half to even).
public struct ResizeAndCenterCrop: Sendable, Equatable {
    /// The square's side in pixels.
    public let resolution: Int

    public init(resolution: Int) {
        self.resolution = resolution
    }

    /// What the transform did to one image: SDXL's micro-conditioning is built from it.
    public struct Outcome: Sendable, Equatable {
        /// The R x R image.
        public let image: PNGImage
        /// The size before resizing, `(height, width)` as diffusers' `original_size`.
        public let originalHeight: Int
        public let originalWidth: Int
        /// The crop's top-left corner in the resized image, `(top, left)` as `crops_coords_top_left`.
        public let cropTop: Int
        public let cropLeft: Int
    }

    /// The resized size `(width, height)` torchvision's `Resize(R)` picks for `width` x `height`.
    public func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let (short, long) = width <= height ? (width, height) : (height, width)
        let newLong = Int(Double(resolution * long) / Double(short))
        return width <= height ? (resolution, newLong) : (newLong, resolution)
    }

    public func apply(_ image: PNGImage) throws -> Outcome {
        guard resolution > 0 else { throw PNGError.invalidImage(detail: "resolution \(resolution) must be positive") }
        let size = resizedSize(width: image.width, height: image.height)
        let resized = try image.resizedBilinear(width: size.width, height: size.height)
        let top = Self.centeredOffset(size.height - resolution), left = Self.centeredOffset(size.width - resolution)
        let square = try resized.cropped(left: left, top: top, width: resolution, height: resolution)
        return Outcome(image: square, originalHeight: image.height, originalWidth: image.width, cropTop: top, cropLeft: left)
    }

    /// `int(round(excess / 2.0))`: an odd excess rounds to the even neighbour.
    static func centeredOffset(_ excess: Int) -> Int {
        Int((Double(excess) / 2).rounded(.toNearestOrEven))
    }
}
