import CGlslang
import Foundation
import KilnGraph
import KilnShaders

/// Compiles Kiln's embedded GLSL kernels to SPIR-V with the linked glslang library.
///
/// Why at run time rather than at build time: kernel variants depend on the device (tile shapes,
/// subgroup size, f16 support), so the set of variants is only known once a device is chosen;
/// linking glslang needs no build-time tool or plugin, so Kiln builds as a plain dependency; and
/// a content-hash keyed SPIR-V cache on disk makes every later run compile nothing.
public final class ShaderCompiler: @unchecked Sendable {
    public static let shared = ShaderCompiler()

    private let lock = NSLock()
    private var memory: [String: [UInt32]] = [:]
    /// How many variants were compiled (not served from a cache) in this process.
    public private(set) var compiledCount = 0
    /// Where compiled SPIR-V is cached: KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.
    public let cacheDirectory: URL?

    private static let initialized: Bool = glslang_initialize_process() != 0
    private let sources: @Sendable (String) -> String?

    /// `sources` maps a file name to GLSL text (the embedded kernels by default).
    init(sources: @escaping @Sendable (String) -> String? = ShaderLibrary.source,
         cacheDirectory: URL? = ShaderCompiler.defaultCacheDirectory()?.appendingPathComponent("spirv", isDirectory: true)) {
        self.sources = sources
        self.cacheDirectory = cacheDirectory
    }

    static func defaultCacheDirectory() -> URL? {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["KILN_CACHE_DIR"], !explicit.isEmpty { return URL(fileURLWithPath: explicit, isDirectory: true) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("kiln") }
        if let home = environment["HOME"], !home.isEmpty { return URL(fileURLWithPath: home).appendingPathComponent(".cache/kiln") }
        return nil
    }

    /// SPIR-V words for `file` built with `defines` (`#define NAME VALUE`), from memory, the disk
    /// cache, or glslang.
    public func spirv(file: String, defines: [(String, String)]) throws -> [UInt32] {
        let source = try expandedSource(file: file, defines: defines)
        let key = SHA256.hex(Array(source.utf8) + Array("glslang-\(GLSLANG_VERSION_MAJOR).\(GLSLANG_VERSION_MINOR)/spv1.5".utf8))
        if let cached = lock.withLock({ memory[key] }) { return cached }
        let cacheFile = cacheDirectory?.appendingPathComponent("\(key).spv")
        if let cacheFile, let data = try? Data(contentsOf: cacheFile), data.count % 4 == 0, data.count >= 20 {
            let words = data.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
            if words[0] == 0x0723_0203 {
                lock.withLock { memory[key] = words }
                return words
            }
        }
        let words = try compile(source: source, file: file)
        lock.withLock {
            memory[key] = words
            compiledCount += 1
        }
        if let cacheFile { Self.writeAtomically(words, to: cacheFile) }
        return words
    }

    /// The full text glslang sees: version, variant defines, then the kernel with its includes
    /// expanded and `#line` markers so errors name the right file and line.
    func expandedSource(file: String, defines: [(String, String)]) throws -> String {
        var text = "#version 460\n#extension GL_GOOGLE_cpp_style_line_directive : require\n"
        for (name, value) in defines { text += "#define \(name) \(value)\n" }
        text += try expandIncludes(file: file, depth: 0)
        return text
    }

    private func expandIncludes(file: String, depth: Int) throws -> String {
        guard let source = sources(file) else {
            throw VulkanError.shaderCompilation(file: file, line: nil, log: "no embedded shader named \(file) (is it listed in Package.swift?)")
        }
        guard depth < 8 else { throw VulkanError.shaderCompilation(file: file, line: nil, log: "#include nested too deeply") }
        var output = "#line 1 \"\(file)\"\n"
        for (number, line) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#include") {
                let parts = trimmed.split(separator: "\"")
                guard parts.count >= 2 else {
                    throw VulkanError.shaderCompilation(file: file, line: number + 1, log: "malformed #include: \(trimmed)")
                }
                output += try expandIncludes(file: String(parts[1]), depth: depth + 1)
                output += "#line \(number + 2) \"\(file)\"\n"
            } else {
                output += line + "\n"
            }
        }
        return output
    }

    private func compile(source: String, file: String) throws -> [UInt32] {
        guard Self.initialized else { throw VulkanError.unsupported("glslang_initialize_process failed") }
        return try source.withCString { code -> [UInt32] in
            var input = glslang_input_t()
            input.language = GLSLANG_SOURCE_GLSL
            input.stage = GLSLANG_STAGE_COMPUTE
            input.client = GLSLANG_CLIENT_VULKAN
            input.client_version = GLSLANG_TARGET_VULKAN_1_2
            input.target_language = GLSLANG_TARGET_SPV
            input.target_language_version = GLSLANG_TARGET_SPV_1_5
            input.code = code
            input.default_version = 460
            input.default_profile = GLSLANG_NO_PROFILE
            input.messages = glslang_messages_t(GLSLANG_MSG_SPV_RULES_BIT.rawValue | GLSLANG_MSG_VULKAN_RULES_BIT.rawValue)
            input.resource = glslang_default_resource()

            guard let shader = glslang_shader_create(&input) else {
                throw VulkanError.shaderCompilation(file: file, line: nil, log: "glslang_shader_create failed")
            }
            defer { glslang_shader_delete(shader) }
            if glslang_shader_preprocess(shader, &input) == 0 || glslang_shader_parse(shader, &input) == 0 {
                throw Self.failure(file: file, log: String(cString: glslang_shader_get_info_log(shader)))
            }
            guard let program = glslang_program_create() else {
                throw VulkanError.shaderCompilation(file: file, line: nil, log: "glslang_program_create failed")
            }
            defer { glslang_program_delete(program) }
            glslang_program_add_shader(program, shader)
            if glslang_program_link(program, Int32(input.messages.rawValue)) == 0 {
                throw Self.failure(file: file, log: String(cString: glslang_program_get_info_log(program)))
            }
            glslang_program_SPIRV_generate(program, GLSLANG_STAGE_COMPUTE)
            let count = glslang_program_SPIRV_get_size(program)
            guard count > 0, let words = glslang_program_SPIRV_get_ptr(program) else {
                throw VulkanError.shaderCompilation(file: file, line: nil, log: "glslang produced no SPIR-V")
            }
            return Array(UnsafeBufferPointer(start: words, count: count))
        }
    }

    /// Turns glslang's log (`ERROR: conv2d.comp:42: 'x' : undeclared identifier`) into an error
    /// naming the file and line of the first error.
    static func failure(file: String, log: String) -> VulkanError {
        for line in log.split(separator: "\n") where line.hasPrefix("ERROR: ") {
            let fields = line.dropFirst(7).split(separator: ":", maxSplits: 2)
            if fields.count >= 2, let number = Int(fields[1]) {
                return .shaderCompilation(file: String(fields[0]), line: number, log: log.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        return .shaderCompilation(file: file, line: nil, log: log.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func writeAtomically(_ words: [UInt32], to url: URL) {
        // A cache write that fails only costs a recompile next time.
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? AtomicFile.write(words.withUnsafeBytes { Data($0) }, to: url)
    }
}
