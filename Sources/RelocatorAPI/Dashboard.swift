import RelocatorApp
import Hummingbird
import JobQueue
import Mustache
import RelocatorCore
import RelocatorMetrics
import SQLStore

/// The dashboard's pages, rendered on the server from the templates of `Dashboard/` (compiled
/// into the binary). Each page is readable without JavaScript; the one script refreshes its data
/// every 2 s and runs the action buttons. The models are plain values, built by pure functions
/// from what Redis and SQL said, so rendering is tested without servers.
public struct Dashboard: Sendable {
    let library: MustacheLibrary

    public static let pages: [(name: String, label: String, href: String)] = [
        ("overview", "Overview", "/ui"), ("waiting", "Waiting", "/ui/waiting"), ("workers", "Workers", "/ui/workers"),
        ("dead", "Dead letters", "/ui/dead"), ("relocations", "Relocations", "/ui/relocations"), ("placement", "Placement", "/ui/placement"),
        ("levels", "Levels", "/ui/levels"),
    ]

    static let templates: [(String, [UInt8])] = [
        ("layout", PackageResources.layout_mustache), ("overview", PackageResources.overview_mustache),
        ("waiting", PackageResources.waiting_mustache), ("workers", PackageResources.workers_mustache),
        ("dead", PackageResources.dead_mustache), ("relocations", PackageResources.relocations_mustache),
        ("placement", PackageResources.placement_mustache), ("levels", PackageResources.levels_mustache),
        ("error", PackageResources.error_mustache), ("pager", PackageResources.pager_mustache),
        ("fill", PackageResources.fill_mustache),
    ]

    static let script = PackageResources.dashboard_js
    static let stylesheet = PackageResources.dashboard_css

    public init() throws {
        var library = MustacheLibrary()
        for (name, bytes) in Self.templates { try library.register(String(decoding: bytes, as: UTF8.self), named: name) }
        self.library = library
    }

    struct NavItem { var href: String; var label: String; var current: Bool }

    struct Layout {
        var title: String
        var nav: [NavItem]
        var generatedAt: String
        var adminRequired: Bool
        var banners: [Banner]
        var hasBanners: Bool
        var body: String
    }

    /// A whole page: `model` rendered with the page's template inside the layout, the banners
    /// (what is stuck, a level paused, Redis unreachable) above it. With `adminRequired`, the
    /// action buttons stay hidden until the tab gives the administrator credential (the page is
    /// read-only until then). `readAt`: when the data shown was read (the last good reading
    /// during an outage), `now` otherwise.
    public func render(page: String, model: Any, adminRequired: Bool, now: Int64, banners: [Banner] = [], readAt: Int64? = nil) -> String {
        let body = library.render(model, withTemplate: page) ?? ""
        let title = Self.pages.first { $0.name == page }?.label ?? "Error"
        let layout = Layout(title: title, nav: Self.pages.map { NavItem(href: $0.href, label: $0.label, current: $0.name == page) },
                            generatedAt: Human.time(readAt ?? now), adminRequired: adminRequired, banners: banners, hasBanners: !banners.isEmpty, body: body)
        return library.render(layout, withTemplate: "layout") ?? body
    }
}

// MARK: - Models

/// Numbers as people read them.
enum Human {
    static func bytes(_ value: Int64?) -> String {
        guard let value else { return "–" }
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var amount = Double(value), unit = 0
        while amount >= 1024 && unit < units.count - 1 { amount /= 1024; unit += 1 }
        return unit == 0 ? "\(value) B" : "\(amount.formatted(decimals: amount < 10 ? 1 : 0)) \(units[unit])"
    }

    static func duration(seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0 else { return "–" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded())) ms" }
        if seconds < 60 { return "\(seconds.formatted(decimals: seconds < 10 ? 1 : 0)) s" }
        let whole = Int(Int64(clamping: seconds.rounded()))
        if whole < 3600 { return "\(whole / 60) min \(whole % 60) s" }
        return "\(whole / 3600) h \(whole % 3600 / 60) min"
    }

    static func rate(bytesPerSecond: Double?) -> String {
        guard let bytesPerSecond, bytesPerSecond.isFinite, bytesPerSecond > 0 else { return "–" }
        return bytes(Int64(clamping: bytesPerSecond)) + "/s"
    }

    /// `2026-11-27 21:33:55 UTC`.
    static func time(_ milliseconds: Int64) -> String {
        String(Timestamp(milliseconds: milliseconds).description.prefix(19)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }

    /// How far a time (ms) is from now: `in 1 min 30 s`, `12 s ago`.
    static func relative(_ milliseconds: Int64, now: Int64) -> String {
        let delta = Double(milliseconds.saturatingSubtract(now)) / 1000
        return delta >= 0 ? "in " + duration(seconds: delta) : duration(seconds: -delta) + " ago"
    }

    static func percent(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "–" }
        return value.formatted(decimals: 1) + " %"
    }
}

