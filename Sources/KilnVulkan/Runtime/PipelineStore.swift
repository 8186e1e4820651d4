import CVulkan
import Foundation
import KilnGraph

/// Identifies one compute pipeline: a kernel file, its variant defines and its specialization
/// constants (workgroup size first).
public struct PipelineKey: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var defines: [String]
    public var specialization: [UInt32]

    public init(file: String, defines: [(String, String)], specialization: [UInt32]) {
        self.file = file
        self.defines = defines.map { "\($0.0)=\($0.1)" }
        self.specialization = specialization
    }

    /// `file DEFINE=value ... [specialization]`, for logs and errors.
    public var description: String { ([file] + defines).joined(separator: " ") + " \(specialization)" }

    var defineList: [(String, String)] {
        defines.map { entry in
            let parts = entry.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "1")
        }
    }
}

/// Compute pipelines built on demand and kept for the device's lifetime, with a VkPipelineCache
/// that is loaded from and saved to disk, so pipeline creation is cheap after the first run.
///
/// Every kernel takes its tensors as buffer device addresses in push constants, so one pipeline
/// layout with a 128-byte push-constant range and no descriptor sets serves every kernel.
///
/// A graph's kernels are built together (`pipelines(for:threads:)`): glslang and
/// vkCreateComputePipelines run for different kernels on several threads at once, which Vulkan
/// allows on one device. Some drivers only finish compiling at a pipeline's first dispatch
/// (lavapipe: vkCreateComputePipelines translates SPIR-V to NIR, and LLVM compiles the shader when
/// a dispatch first uses it, on the queue's thread); `VulkanDevice.pipelines(for:)` makes that
/// happen while the graph is prepared rather than inside its first run.
public final class PipelineStore: @unchecked Sendable {
    static let pushConstantBytes = 128

    // Plain handles rather than the device: the device releases its pipelines from its deinit.
    private let handle: VkDevice
    private let info: DeviceInfo
    private let lock = NSLock()
    private var pipelines: [PipelineKey: VkPipeline] = [:]
    private var cache: VkPipelineCache?
    private var layoutHandle: VkPipelineLayout?
    private var createdSinceSave = 0
    /// Seconds spent creating pipelines in this process, summed over the threads that built them
    /// (glslang and vkCreateComputePipelines; a driver's compile at first dispatch is not included).
    public private(set) var creationSeconds: Double = 0
    /// How many pipelines this store created (not counting ones found already built).
    public private(set) var createdCount = 0
    /// At most this many threads build one graph's pipelines (the processor count, at most 8).
    public static var defaultThreads: Int { max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8)) }

    init(handle: VkDevice, info: DeviceInfo) {
        self.handle = handle
        self.info = info
    }

    private var cacheFile: URL? {
        ShaderCompiler.defaultCacheDirectory()?.appendingPathComponent("pipelines-\(info.uuid)-\(info.driverInfo.filter { $0.isLetter || $0.isNumber }).bin")
    }

    /// The one pipeline layout every kernel uses.
    func layout() throws -> VkPipelineLayout { try lock.withLock { try layoutLocked() } }

    private func layoutLocked() throws -> VkPipelineLayout {
        if let layoutHandle { return layoutHandle }
        var range = VkPushConstantRange()
        range.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT.rawValue
        range.offset = 0
        range.size = UInt32(Self.pushConstantBytes)
        var info = VkPipelineLayoutCreateInfo()
        info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
        var created: VkPipelineLayout?
        try withUnsafePointer(to: &range) { rangePointer in
            info.pushConstantRangeCount = 1
            info.pPushConstantRanges = rangePointer
            try check(vkCreatePipelineLayout(handle, &info, nil, &created), "vkCreatePipelineLayout")
        }
        layoutHandle = created
        guard let created else { throw VulkanError.call("vkCreatePipelineLayout", VK_ERROR_INITIALIZATION_FAILED.rawValue) }
        return created
    }

    private func pipelineCache() throws -> VkPipelineCache? {
        if let cache { return cache }
        let initial = cacheFile.flatMap { try? Data(contentsOf: $0) } ?? Data()
        var created: VkPipelineCache?
        try initial.withUnsafeBytes { raw in
            var info = VkPipelineCacheCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO
            info.initialDataSize = raw.count
            info.pInitialData = raw.baseAddress
            try check(vkCreatePipelineCache(handle, &info, nil, &created), "vkCreatePipelineCache")
        }
        cache = created
        return created
    }

    /// The pipeline for `key`, compiling the kernel if needed. Compilation runs outside the lock
    /// so threads build different pipelines in parallel (drivers compile on the calling thread).
    public func pipeline(_ key: PipelineKey) throws -> VkPipeline {
        try pipelineAndWhetherNew(key).pipeline
    }

    /// The pipeline for `key` and whether this call created it (false when it existed, or another
    /// thread created it first).
    func pipelineAndWhetherNew(_ key: PipelineKey) throws -> (pipeline: VkPipeline, new: Bool) {
        let (layout, cache) = try lock.withLock { () throws -> (VkPipelineLayout, VkPipelineCache?) in
            (try layoutLocked(), try pipelineCache())
        }
        if let existing = lock.withLock({ pipelines[key] }) { return (existing, false) }
        let start = Date()
        let created = try build(key, layout: layout, cache: cache)
        return lock.withLock {
            if let winner = pipelines[key] {
                vkDestroyPipeline(handle, created, nil)
                return (winner, false)
            }
            pipelines[key] = created
            createdSinceSave += 1
            createdCount += 1
            creationSeconds += Date().timeIntervalSince(start)
            return (created, true)
        }
    }

    /// The pipelines for `keys`, in their order (a key may repeat), building the missing ones on up
    /// to `threads` threads at once; `created` lists the ones this call built, each once. When
    /// kernels fail to compile, the error of the first failing key in `keys`' order is thrown, so
    /// the message does not depend on thread timing.
    public func pipelines(for keys: [PipelineKey], threads: Int = PipelineStore.defaultThreads)
        throws -> (pipelines: [VkPipeline], created: [(key: PipelineKey, pipeline: VkPipeline)]) {
        var distinct: [PipelineKey] = []
        var seen = Set<PipelineKey>()
        for key in keys where !seen.contains(key) {
            seen.insert(key)
            distinct.append(key)
        }
        let missing = lock.withLock { distinct.filter { pipelines[$0] == nil } }
        // Results by index of `missing`, each slot written by exactly one worker.
        let results = ResultSlots(count: missing.count)
        let workers = max(1, min(threads, missing.count))
        if workers == 1 {
            for index in missing.indices { results.set(index, Result { try pipelineAndWhetherNew(missing[index]) }) }
        } else {
            let next = IndexCounter()
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while let index = next.take(below: missing.count) {
                    results.set(index, Result { try pipelineAndWhetherNew(missing[index]) })
                }
            }
        }
        var created: [(key: PipelineKey, pipeline: VkPipeline)] = []
        for index in missing.indices {
            switch results.get(index) {
            case .success(let built): if built.new { created.append((missing[index], built.pipeline)) }
            case .failure(let error): throw error
            case nil: throw VulkanError.unsupported("pipeline for \(missing[index].file) was not built")
            }
        }
        let all = try lock.withLock { () throws -> [VkPipeline] in
            try keys.map { key in
                guard let pipeline = pipelines[key] else { throw VulkanError.unsupported("pipeline for \(key.file) was not built") }
                return pipeline
            }
        }
        return (all, created)
    }

    private func build(_ key: PipelineKey, layout: VkPipelineLayout, cache: VkPipelineCache?) throws -> VkPipeline {
        let start = Date()
        let words = try ShaderCompiler.shared.spirv(file: key.file, defines: key.defineList)
        let translated = Date()
        defer {
            if PipelineLog.enabled {
                PipelineLog.write(String(format: "pipeline %@: SPIR-V %.3f s, vkCreateComputePipelines %.3f s",
                                         key.description, translated.timeIntervalSince(start), Date().timeIntervalSince(translated)))
            }
        }
        var module: VkShaderModule?
        try words.withUnsafeBufferPointer { code in
            var info = VkShaderModuleCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            info.codeSize = code.count * 4
            info.pCode = code.baseAddress
            try check(vkCreateShaderModule(handle, &info, nil, &module), "vkCreateShaderModule(\(key.file))")
        }
        defer { vkDestroyShaderModule(handle, module, nil) }

        let entries = key.specialization.indices.map { index in
            VkSpecializationMapEntry(constantID: UInt32(index), offset: UInt32(index * 4), size: 4)
        }
        var pipeline: VkPipeline?
        try entries.withUnsafeBufferPointer { entryPointer in
            try key.specialization.withUnsafeBytes { data in
                var specialization = VkSpecializationInfo(
                    mapEntryCount: UInt32(entries.count), pMapEntries: entryPointer.baseAddress,
                    dataSize: data.count, pData: data.baseAddress)
                try "main".withCString { entryName in
                    try withUnsafePointer(to: &specialization) { specializationPointer in
                        var stage = VkPipelineShaderStageCreateInfo()
                        stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
                        stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
                        stage.module = module
                        stage.pName = entryName
                        stage.pSpecializationInfo = entries.isEmpty ? nil : specializationPointer
                        var info = VkComputePipelineCreateInfo()
                        info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
                        info.stage = stage
                        info.layout = layout
                        try check(
                            vkCreateComputePipelines(handle, cache, 1, &info, nil, &pipeline),
                            "vkCreateComputePipelines(\(key.file) \(key.defines.joined(separator: " ")))")
                    }
                }
            }
        }
        guard let pipeline else { throw VulkanError.call("vkCreateComputePipelines", VK_ERROR_INITIALIZATION_FAILED.rawValue) }
        return pipeline
    }

    /// Writes the pipeline cache to disk if new pipelines were created since the last save.
    public func save() {
        lock.withLock {
            guard createdSinceSave > 0, let cache, let cacheFile else { return }
            var size = 0
            guard vkGetPipelineCacheData(handle, cache, &size, nil) == VK_SUCCESS, size > 0 else { return }
            var data = Data(count: size)
            let result = data.withUnsafeMutableBytes { vkGetPipelineCacheData(handle, cache, &size, $0.baseAddress) }
            guard result == VK_SUCCESS else { return }
            try? FileManager.default.createDirectory(at: cacheFile.deletingLastPathComponent(), withIntermediateDirectories: true)
            if (try? AtomicFile.write(data.prefix(size), to: cacheFile)) != nil { createdSinceSave = 0 }
        }
    }

    func release() {
        save()
        lock.withLock {
            for pipeline in pipelines.values { vkDestroyPipeline(handle, pipeline, nil) }
            pipelines.removeAll()
            if let cache { vkDestroyPipelineCache(handle, cache, nil) }
            if let layoutHandle { vkDestroyPipelineLayout(handle, layoutHandle, nil) }
            cache = nil
            layoutHandle = nil
        }
    }
}

/// Hands out 0, 1, 2, ... to worker threads, each index once.
private final class IndexCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take(below limit: Int) -> Int? {
        lock.withLock {
            guard value < limit else { return nil }
            defer { value += 1 }
            return value
        }
    }
}

/// One result per index, written by worker threads and read once they are done.
private final class ResultSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<(pipeline: VkPipeline, new: Bool), Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<(pipeline: VkPipeline, new: Bool), Error>) { lock.withLock { slots[index] = result } }

    func get(_ index: Int) -> Result<(pipeline: VkPipeline, new: Bool), Error>? { lock.withLock { slots[index] } }
}

/// `KILN_LOG_PIPELINES=1`: one line on stderr per pipeline built (SPIR-V from glslang or the cache,
/// vkCreateComputePipelines) and per first-dispatch compile, to see which kernels a cold start pays for.
enum PipelineLog {
    static let enabled = ProcessInfo.processInfo.environment["KILN_LOG_PIPELINES"] == "1"

    static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
