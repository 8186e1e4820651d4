import Foundation

extension URL {
    /// True when the path names an existing folder (a symbolic link to one counts).
    public var isExistingFolder: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
