import Foundation
import Privacy
public import Store
import Storage

/// Notes on the charts' days: a site's by whoever configures it, every site's by owners and admins.
extension Administration {
    public func annotate(site: String?, date: String, text: String, by actor: Actor) throws -> Annotation {
        try require(actor, site.map { .configure(site: $0) } ?? .installAnnotations)
        guard let day = SiteCalendar.day(parsing: date) else { throw ActionError.invalid("The date is YYYY-MM-DD.") }
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(text.count), !text.contains("\n") else { throw ActionError.invalid("A note is one line of 1–200 characters.") }
        let note = Annotation(id: Hex.encode(Sodium.randomBytes(8)), siteID: site, day: SiteCalendar.dateText(day), text: text,
                              createdBy: actor.label, createdAt: nowMs)
        try database.transaction { tx in
            if let site, try tx.site(id: site) == nil { throw ActionError.notFound("no site \(site.prefix(64))") }
            try tx.insertAnnotation(note)
            try audit.record(in: tx, actor: actor.label, action: "annotation_added", site: site,
                             detail: ["annotation": .string(note.id), "day": .string(note.day)])
        }
        return note
    }

    public func removeAnnotation(id: String, by actor: Actor) throws {
        try database.transaction { tx in
            guard let note = try tx.annotation(id: id) else { throw ActionError.notFound("no such note") }
            try require(actor, note.siteID.map { .configure(site: $0) } ?? .installAnnotations)
            try tx.deleteAnnotation(id: id)
            try audit.record(in: tx, actor: actor.label, action: "annotation_removed", site: note.siteID, detail: ["annotation": .string(id)])
        }
    }
}
