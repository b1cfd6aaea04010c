// Package repair keeps every object of a cell at its copy count: the cell's repair and
// scrub loop, and its garbage collection of orphan blobs. Nothing in it crosses a cell
// boundary: it reads its own cell's index, talks to its own cell's storage nodes, and
// commits through its own cell's index.
//
// # Where it runs
//
// The loop runs in the cell's placement node (placementd); with several placement
// nodes, only the ready one with the smallest node id runs it, the others stand by and
// take over from the gossip when it goes. Placement is the right home:
//
//   - Choosing storage nodes for copies is placement's job already. The loop places a
//     new copy with the same rule Allocate uses: only storage nodes the gossip shows
//     ready (never a read-only one).
//   - Placement already depends on its cell's index, as a repair must: no index, no
//     repair, exactly as no index, no PUT.
//   - It keeps the copying, listing and pacing off the index leader, whose process must
//     answer raft heartbeats on time (a busy leader loses its lease, and the cell its
//     writes), and off the gateways, which are stateless and many.
//   - It uses only the cell's public APIs: Index.List and Index.Commit (with
//     CommitRequest.if_object_id, so a repair never undoes an overwrite or a delete
//     that came in meanwhile), Storage.Read, Write and Delete, and each storage node's
//     Blobs inventory (List and Verify). A repair behaves like any other client of the
//     cell, and the index needs no special path for it.
//
// # A pass
//
// Every Options.Interval (30 s) the loop makes a pass:
//
//  1. It lists the blobs of every storage node of the cell in the gossip (Blobs.List).
//     A node that cannot be listed is unknown: its copies count neither as held nor as
//     missing, so a node that restarts is not refilled elsewhere.
//  2. It reads the cell's whole index (every bucket, every key, page by page, and the
//     parts of multipart uploads in progress). A pass whose scan fails does nothing
//     more: an incomplete scan would make every blob look like garbage.
//  3. For every object version, current or older (the older versions of a versioned
//     key, those under a delete marker too, keep their copies as the current one does),
//     and every part of a multipart object, written at least
//     RecentMargin before the pass began (a newer one may have blobs the listing
//     missed: the next pass judges it, and this pass's counts leave it out) it counts the
//     copies: a replica the index lists on a node whose listing holds the blob is held;
//     one on a listed node that lacks it is missing (the node lost its disk, or a write
//     never reached it). A missing copy on a ready node is written back to that node
//     from a held copy (a wiped or replaced node refills this way); an object with
//     fewer replicas than the cell's copies (a degraded write) gets a copy on another
//     ready node, and the new replica list is committed through the index for that
//     version (CommitRequest.if_object_id names it by its blob): the index changes the
//     replica lists of that version alone, wherever it stands among the key's versions,
//     and only if the key still has it. If the version is gone the new copy is deleted
//     at once: no index record ever pointed to it. The scrubber's list is every held
//     copy of every version.
//  4. Garbage: a blob of a listed node that no index record references (an object, a
//     part, or a part of an upload in progress) is an orphan. It is deleted once it is
//     older than Options.GCGrace and was first seen orphaned at least GCGrace ago: the
//     first rule spares a write about to be committed, the second a GET that looked the
//     key up just before an overwrite and has yet to open the old blob (the gateway's
//     reclaim waits the same grace for the same reason).
//
// # Scrub
//
// Beside the passes, a scrubber verifies every held copy in turn (Blobs.Verify: the
// storage node reads the blob and checks every block's CRC32C, sending nothing back),
// at Options.ScrubRate bytes per second (an object counts as at least 64 KiB, so small
// objects are paced too). A corrupt copy is rewritten from another copy, which the
// storage node checks block by block as it reads it.
//
// # Pacing
//
// A refill is many small copies: each costs the source a read stream and the target a
// write stream, a new file, an fsync of it and one of its directory, whatever its
// bytes. Copied one or two at a time, a refill runs at the speed of one fsync after
// another (about a hundred objects a second on this project's machines, hours for a
// node of a hundred thousand). So a pass copies Options.Workers objects at once (the
// window, 16): the target's disk commits their fsyncs together. The window does not
// set the rate; one pacer over every copy in flight does: each copy waits for its
// slot in a schedule of at most Options.RepairOps blobs and Options.RepairRate bytes
// per second (the first binds for small objects, the second for large ones), so the
// copies are spread evenly over time rather than sent in bursts that foreground
// requests would queue behind. The scrubber has its own pacer (ScrubRate, a blob
// counting as at least 64 KiB).
//
// A pass also starts at once, not at the next interval, when a storage node of the
// cell comes back ready (the gossip shows it ready with a new start time): a wiped or
// replaced node is refilled from the moment it returns.
//
// The pacing is the topology's repair section (cell.RepairPacing), which becomes the
// placement nodes' flags; docs/durability.md has the measured refill rate and what it
// costs foreground requests.
//
// # Lifecycle expiration
//
// The loop also expires the objects that their bucket's lifecycle rules say are due,
// in the buckets its cell's index holds, through conditional index deletes; see
// lifecycle.go.
//
// # What it exports
//
// Metrics (on the host daemon's registry): cellar_repair_under_replicated_objects,
// cellar_repair_objects_repaired_total, cellar_repair_bytes_total,
// cellar_repair_corrupt_found_total, cellar_repair_corrupt_repaired_total,
// cellar_repair_lost_objects, cellar_repair_gc_deleted_blobs_total,
// cellar_repair_gc_deleted_bytes_total, cellar_repair_passes_total,
// cellar_lifecycle_expired_total. The same numbers are
// the host's status gauges (repair_*), which the status page shows per cell, and the
// Repair gRPC service (Status, CollectGarbage) serves them to 'cellctl gc'.
package repair
