import ArgumentParser
import Kiln

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "devices", abstract: "List Vulkan devices and the limits Kiln uses.")

    @Flag(help: "Print a JSON array, one object per device.")
    var json = false

    func run() throws {
        let devices = try VulkanInstance.shared().physicalDevices().map(\.info)
        if json { return try printJSON(devices) }
        if devices.isEmpty { print("No Vulkan devices found.") }
        for info in devices {
            print("[\(info.index)] \(info.name)")
            print("    type              \(info.type.rawValue)")
            print("    driver            \(info.driverName) \(info.driverInfo)")
            print("    Vulkan            \(info.apiVersion)")
            print("    uuid              \(info.uuid)")
            for (index, heap) in info.memoryHeaps.enumerated() {
                print("    memory heap \(index)     \(formatBytes(heap.bytes))\(heap.deviceLocal ? " device-local" : "")")
            }
            print("    max storage range \(formatBytes(info.maxStorageBufferRange))")
            print("    max allocation    \(formatBytes(info.maxMemoryAllocationSize))")
            print("    shared memory     \(formatBytes(UInt64(info.maxComputeSharedMemorySize)))")
            print("    subgroup size     \(info.subgroupSize)")
            print("    fp16              \(info.shaderFloat16 ? "yes" : "no") (16-bit storage: \(info.storageBuffer16BitAccess ? "yes" : "no"))")
            print("    coop. matrix      \(info.cooperativeMatrix ? "yes" : "no")")
            if let reason = info.unsupportedReason { print("    UNSUPPORTED       \(reason)") }
        }
    }
}

func formatBytes(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes), unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

import Foundation
