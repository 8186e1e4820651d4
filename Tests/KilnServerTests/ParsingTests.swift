import Foundation
import Hummingbird
@testable import KilnServer
import Testing

/// The pieces that read what clients send: JSON, A1111 sampler names, credentials, infotexts.
struct ParsingTests {
    @Test func jsonParserKeepsOrderAndRefusesHostileInput() throws {
        let value = try JSONValue.parse(Data(#"{"b": 1, "a": [true, null, "\u00e9\ud83d\ude00"], "c": -2.5e3}"#.utf8))
        #expect(value.serialized() == #"{"b": 1, "a": [true, null, "é😀"], "c": -2500}"#)
        for bad in [#"{"a": }"#, "[1, 2", #"{"a": "\x"}"#, String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "01x", "{} {}"] {
            #expect(throws: APIError.self, "\(bad)") { try JSONValue.parse(Data(bad.utf8)) }
        }
        #expect(try JSONValue.parse(Data()) == .object([]))
    }

    @Test func a1111SamplerNamesAliasesAndLegacySuffixes() throws {
        let legacy = try A1111Samplers.resolve(sampler: "DPM++ 2M Karras", scheduler: "automatic", samplerField: "sampler_name")
        #expect(legacy.sampler.kiln == .dpmPlusPlus2M && legacy.scheduler.spacing == .karras)
        let alias = try A1111Samplers.resolve(sampler: "k_euler_a", scheduler: "Exponential", samplerField: "sampler_name")
        #expect(alias.sampler.kiln == .eulerAncestral && alias.scheduler.spacing == .exponential)
        let plain = try A1111Samplers.resolve(sampler: "plms", scheduler: nil, samplerField: "sampler_name")
        #expect(plain.sampler.kiln == .pndm && plain.scheduler.spacing == nil)
        #expect(throws: APIError.self) { try A1111Samplers.resolve(sampler: "UniPC", scheduler: nil, samplerField: "sampler_name") }
        #expect(throws: APIError.self) { try A1111Samplers.resolve(sampler: "Euler", scheduler: "sgm_uniform", samplerField: "sampler_name") }
        #expect(throws: APIError.self) { try A1111Samplers.resolve(sampler: "Euler SGM Uniform", scheduler: nil, samplerField: "sampler_name") }
    }

    @Test func credentials() throws {
        #expect(try BasicCredential.parseList("a:b,c:d:e") == [BasicCredential(user: "a", password: "b"), BasicCredential(user: "c", password: "d:e")])
        #expect(throws: APIError.self) { try BasicCredential.parseList("nocolon") }
        #expect(BasicAuthMiddleware<Hummingbird.BasicRequestContext>.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!BasicAuthMiddleware<Hummingbird.BasicRequestContext>.constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!BasicAuthMiddleware<Hummingbird.BasicRequestContext>.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
    }

    @Test func infotextsParseAsA1111Does() {
        let text = "a cat, sitting\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Size: 64x48, Model: \"my, model\""
        let fields = InfotextParser.parse(text)
        #expect(fields["Prompt"] == .string("a cat, sitting"))
        #expect(fields["Negative prompt"] == .string("blurry"))
        #expect(fields["Sampler"] == .string("Euler a"))
        #expect(fields["Size-2"] == .string("48"))
        #expect(fields["Model"] == .string("my, model"))
    }
}
