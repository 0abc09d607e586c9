public import Consent
public import Store

/// Who performs an action, and the one place that decides what they may do.
///
/// The command line acts as the operator (whoever can run it can read the data directory
/// anyway). Dashboard users act with their role: owners everything; admins everything but
/// other owners; managers configure their assigned sites and issue or revoke statistics keys
/// for them; viewers nothing.
public struct Actor: Sendable, Equatable {
    public enum Standing: Sendable, Equatable {
        case operator_
        case user(id: Int64, role: Role, sites: Set<String>)
        /// A provisioning key (scope `admin:provision`): sites, goals, statistics keys, and the
        /// accounts of managers and viewers (no admins or owners, no officer keys, no policies,
        /// webhooks, destinations, terms, alerts or privacy office). As strong as a manager of
        /// every site: the keys and accounts it makes read what those read (commission included).
        case provisioningKey
    }

    /// As written to the audit log: "cli", "user:EMAIL".
    public let label: String
    public let standing: Standing

    public static let cli = Actor(label: "cli", standing: .operator_)

    public static func user(_ user: User, sites: Set<String>) -> Actor {
        Actor(label: "user:\(user.email)", standing: .user(id: user.id ?? -1, role: user.role, sites: sites))
    }

    /// A provisioning key (scope `admin:provision`), "api-key:ID" in the audit log: see ``Standing/provisioningKey``.
    public static func provisioningKey(id: String) -> Actor {
        Actor(label: "api-key:\(id)", standing: .provisioningKey)
    }

    public init(label: String, standing: Standing) {
        self.label = label
        self.standing = standing
    }

    var role: Role? {
        if case .user(_, let role, _) = standing { return role }
        return nil
    }

    /// Owners, admins and the operator: every site, the privacy office, users, webhooks.
    public var isStaffAdmin: Bool {
        switch standing {
        case .operator_: true
        case .user(_, let role, _): role == .owner || role == .admin
        case .provisioningKey: false
        }
    }

    public func may(_ permission: Permission) -> Bool {
        if standing == .provisioningKey {
            let limited: Set<Role?> = [nil, .manager, .viewer]
            switch permission {
            case .addSites, .removeSites, .configure: return true
            case .issueKey(let site, let scope), .revokeKey(let site, let scope): return site != nil && scope == .statsRead
            case .manageUser(let current, let new): return limited.contains(current) && limited.contains(new)
            default: return false
            }
        }
        switch permission {
        case .addSites, .removeSites, .changePolicy, .configureWebhooks, .configureDestinations, .setTerms, .fileRequests, .exportSubjects, .runRequests,
             .viewPrivacyCenter, .installAlerts, .installAnnotations, .importData:
            return isStaffAdmin
        case .configure(let site):
            switch standing {
            case .operator_: return true
            case .user(_, let role, let sites): return role == .owner || role == .admin || (role == .manager && sites.contains(site))
            case .provisioningKey: return true
            }
        case .issueKey(let site, let scope), .revokeKey(let site, let scope):
            switch scope {
            // A provisioning key reaches every site and outlives people: owners (and the operator) only.
            case .provision: return site == nil && (standing == .operator_ || role == .owner)
            case .privacyOfficer: return site != nil && isStaffAdmin
            case .statsRead: return site.map { may(.configure(site: $0)) } ?? false
            }
        case .requireTwoFactor:
            // The rule binds owners too: only they (and the operator) change it.
            return standing == .operator_ || role == .owner
        case .manageUser(let current, let new):
            switch standing {
            case .operator_: return true
            case .user(_, let role, _):
                if role == .owner { return true }
                // Admins manage everyone but owners, and make no one an owner.
                return role == .admin && current != .owner && new != .owner
            case .provisioningKey: return false
            }
        }
    }
}

/// Who reads a site's exact figures: owners and admins, and managers where the site's policy does
/// not restrict them; everyone else reads them k-anonymised (pages, exports, shared links,
/// reports), and alert messages, which hold exact counts, go only to the former.
public func readsExactFigures(_ role: Role, policy: Policy) -> Bool {
    role == .owner || role == .admin || (role == .manager && !policy.restrictManagers)
}

/// Who reads client commission (the month's sales, attributed revenue and what is owed): every
/// role but viewers, on the sites they may see (the commission pages, and the monthly report's section).
public func readsCommission(_ role: Role) -> Bool {
    role != .viewer
}

/// What an action needs to be allowed.
public enum Permission: Sendable, Equatable {
    case addSites
    /// Archiving, bringing back and deleting sites: owners and admins only.
    case removeSites
    case configure(site: String)
    /// A site's policy decides consent, retention and what managers may read (k-anonymity):
    /// owners and admins only.
    case changePolicy
    /// A key of `scope` for `site` (nil: an install-wide provisioning key).
    case issueKey(site: String?, scope: APIKeyScope)
    case revokeKey(site: String?, scope: APIKeyScope)
    /// Adding (current nil), changing or removing (new nil) an account.
    case manageUser(current: Role?, new: Role?)
    case configureWebhooks
    /// Forwarding conversions to third parties (destinations): owners and admins only.
    case configureDestinations
    case setTerms
    /// Alert rules and channels of the whole install: owners and admins only.
    case installAlerts
    /// Importing another tool's history into a site, and removing an import: owners and admins
    /// only (imported days become figures every reader of the site is shown).
    case importData
    /// Chart notes on every site at once: owners and admins only (a site's own: who configures it).
    case installAnnotations
    /// Which roles must sign in with a second factor: owners only.
    case requireTwoFactor
    case fileRequests
    case exportSubjects
    case runRequests
    case viewPrivacyCenter
}

/// Why an action was not carried out.
public enum ActionError: Error, Equatable, CustomStringConvertible {
    case forbidden(String)
    case invalid(String)
    case notFound(String)

    public var description: String {
        switch self {
        case .forbidden(let why), .invalid(let why), .notFound(let why): why
        }
    }
}
