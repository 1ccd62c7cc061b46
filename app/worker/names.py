"""Every task's name, once: the task's decorator, the lane that routes it, beat and whoever
publishes it by name all read it from here."""

HEARTBEAT = "health.heartbeat"
SYNC_TICK = "sync.tick"
SYNC_RUN = "sync.run"
DISPATCH_SWEEP = "dispatch.sweep"
DISPATCH_SEND = "dispatch.send"
LINKS_RECOMPUTE = "links.recompute"
