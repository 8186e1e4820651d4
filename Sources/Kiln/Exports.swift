// `import Kiln` gives embedding programs the graph builder, both backends and the device API.
// The op-case table, verification and benchmark tables live in KilnVerification, which only the
// `kiln` tools and the tests link.
@_exported import KilnCPU
@_exported import KilnDefaultModel
@_exported import KilnGraph
@_exported import KilnImage
@_exported import KilnModels
@_exported import KilnPipelines
@_exported import KilnSampling
@_exported import KilnVulkan
