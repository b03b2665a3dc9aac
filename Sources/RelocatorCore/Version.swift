/// The version of this build, the one place it is written: `relocator --version` prints it.
public enum RelocatorVersion {
    public static let string = "0.5.0"
}
